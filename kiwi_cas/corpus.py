"""Bulk runs over a corpus: input discovery, batching, parallel workers, resume, error log.

One bad file never stops a run: its failure goes to ``OUTDIR/errors.jsonl`` (file, error
type, message; never note text) and the run goes on. Outputs are written atomically, so
``--resume`` can trust that any output present is complete.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from kiwi_cas.annotator import AnnotatorConfig, KiwiAnnotator
from kiwi_cas.cas.kiwi_annotations import read_kiwi
from kiwi_cas.cas.io import atomic_write, check_xml_text, describe_error, load_input, replace_invalid_xml_chars, \
    serialize, write_typesystem
from kiwi_cas.cas.safexml import DEFAULT_MAX_BYTES
from kiwi_cas.cas.typesystem import TypeSystemError, merged_typesystem

INPUT_SUFFIXES = (".xmi", ".txt")
OUTPUT_FORMATS = {"xmi": ".xmi", "jsoncas": ".json"}


@dataclass(frozen=True)
class WorkItem:
    source: Path
    output: Path


@dataclass
class RunOptions:
    outdir: Path
    typesystems: tuple[Path, ...] = ()
    lenient: bool = False
    encoding: str = "utf-8"
    max_bytes: int = DEFAULT_MAX_BYTES
    output_format: str = "xmi"
    replace_invalid_xml_chars: bool = False
    resume: bool = False
    jobs: int = 1
    batch_size: int = 8


@dataclass
class FileResult:
    source: str
    output: str
    ok: bool
    error_type: str | None = None
    message: str | None = None
    entities: int = 0
    modifiers: int = 0
    relations: int = 0
    dropped: int = 0
    typesystems: tuple[str, ...] = ()
    unaligned: dict = field(default_factory=dict)  # LLaMA outputs dropped in alignment, by reason


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    entities: int = 0
    modifiers: int = 0
    relations: int = 0
    dropped: int = 0
    unaligned: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    failures: list[FileResult] = field(default_factory=list)

    @property
    def notes_per_second(self) -> float:
        return (self.ok + self.failed) / self.seconds if self.seconds else 0.0


class DiscoveryError(ValueError):
    pass


def output_name(source: Path, output_format: str) -> str:
    name = source.name
    if source.suffix.lower() in (".txt", ".xmi"):
        name = source.stem
    return name + OUTPUT_FORMATS[output_format]


def discover(inputs: list[str], outdir: Path, output_format: str = "xmi") -> list[WorkItem]:
    """Files, folders (recursive ``*.xmi``/``*.txt``) and globs -> work items with output paths.

    A folder's files keep their relative paths under OUTDIR; files named directly go to OUTDIR.
    """
    items: list[WorkItem] = []
    seen_out: dict[Path, Path] = {}
    outdir_res = outdir.resolve()

    def add(src: Path, rel_parent: Path) -> None:
        out = outdir / rel_parent / output_name(src, output_format)
        if src.resolve().is_relative_to(outdir_res):
            return  # never read our own outputs as inputs
        if out in seen_out:
            raise DiscoveryError(f"{src} and {seen_out[out]} would both write {out}")
        seen_out[out] = src
        items.append(WorkItem(src, out))

    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
                            and not p.name.startswith(".")):
                add(f, f.parent.relative_to(path))
        elif path.is_file():
            add(path, Path("."))
        else:
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                raise DiscoveryError(f"no input matches {spec!r}")
            for f in files:
                add(f, Path("."))
    return items


# ---- worker side -------------------------------------------------------------------------

_worker: KiwiAnnotator | None = None


def _init_worker(config: AnnotatorConfig) -> None:
    global _worker
    _worker = KiwiAnnotator(config)
    _worker.initialize()


def process_batch(annotator: KiwiAnnotator, items: list[WorkItem], options: RunOptions) -> list[FileResult]:
    """Load, annotate (one extractor call for the batch), save. Failures are per file."""
    results: dict[WorkItem, FileResult] = {}
    loaded = []
    for item in items:
        try:
            lc = load_input(item.source, options.typesystems, options.lenient, options.encoding, options.max_bytes)
            text = _view_text(lc.cas, annotator.config.view)
            if options.replace_invalid_xml_chars and item.source.suffix.lower() == ".txt":
                lc.cas.sofa_string = replace_invalid_xml_chars(lc.cas.sofa_string or "")
            elif options.output_format == "xmi":
                check_xml_text(text)
            loaded.append((item, lc))
        except Exception as exc:  # anything about one file must not stop the run
            results[item] = _failure(item, exc)
    counter = getattr(annotator.extractor, "dropped", None)
    before = Counter(counter) if counter is not None else Counter()
    batches = [loaded] if len(loaded) > 1 else [[x] for x in loaded]
    while batches:
        batch = batches.pop(0)
        try:
            annotator.process_batch([lc.cas for _, lc in batch])
        except Exception as exc:
            if len(batch) > 1:  # isolate the file that failed
                batches = [[x] for x in batch] + batches
                continue
            results[batch[0][0]] = _failure(batch[0][0], exc)
            continue
        for item, lc in batch:
            ext = read_kiwi(lc.cas.get_view(annotator.config.view))
            try:
                atomic_write(item.output, serialize(lc.cas, options.output_format))
            except Exception as exc:
                results[item] = _failure(item, exc)
                continue
            results[item] = FileResult(str(item.source), str(item.output), True, entities=len(ext.entities),
                                       modifiers=len(ext.modifiers), relations=len(ext.relations),
                                       dropped=lc.dropped, typesystems=lc.typesystem_paths)
    out = [results[i] for i in items]
    if counter is not None and out:
        out[0].unaligned = dict(Counter(counter) - before)
    return out


def _view_text(cas, name: str) -> str:
    try:
        return cas.get_view(name).sofa_string or ""
    except KeyError:
        return ""  # the annotator reports the missing view


def _worker_batch(items: list[WorkItem], options: RunOptions) -> list[FileResult]:
    assert _worker is not None
    return process_batch(_worker, items, options)


def _failure(item: WorkItem, exc: Exception) -> FileResult:
    kind, message = describe_error(exc)
    return FileResult(str(item.source), str(item.output), False, kind, message)


# ---- driver ------------------------------------------------------------------------------

def _batches(items: list[WorkItem], size: int) -> Iterator[list[WorkItem]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class _TypesystemWriter:
    """Keeps ``TypeSystem.xml`` in every output folder: the merge of all typesystems used there."""

    def __init__(self) -> None:
        self.paths: dict[Path, set[str]] = {}

    def update(self, result: FileResult) -> None:
        folder = Path(result.output).parent
        known = self.paths.setdefault(folder, set())
        new = set(result.typesystems) - known
        if new or not (folder / "TypeSystem.xml").exists():
            known |= new
            write_typesystem(merged_typesystem(tuple(sorted(known))), folder / "TypeSystem.xml")


def _with_typesystem(ts_writer: _TypesystemWriter, r: FileResult) -> FileResult:
    """Record the output's typesystem; an output whose typesystem conflicts is removed and failed."""
    try:
        ts_writer.update(r)
        return r
    except TypeSystemError as exc:
        Path(r.output).unlink(missing_ok=True)
        return FileResult(r.source, r.output, False, "typesystem_conflict",
                          f"its typesystem cannot share TypeSystem.xml with earlier outputs in that folder ({exc}); "
                          "annotate it into another folder")


def run_corpus(items: list[WorkItem], config: AnnotatorConfig, options: RunOptions,
               annotator: KiwiAnnotator | None = None, show_progress: bool | None = None) -> RunSummary:
    outdir = options.outdir
    outdir.mkdir(parents=True, exist_ok=True)
    for stale in outdir.rglob(".*.tmp"):
        stale.unlink(missing_ok=True)  # left by a killed run; never a finished output
    summary = RunSummary()
    todo = [i for i in items if not (options.resume and i.output.exists())]
    summary.skipped = len(items) - len(todo)
    errors_path = outdir / "errors.jsonl"
    ts_writer = _TypesystemWriter()
    if options.resume:
        for item in items:
            if item.output.exists():
                ts_writer.paths.setdefault(item.output.parent, set())
    started = time.time()
    progress = tqdm(total=len(todo), unit="note", desc="annotate", dynamic_ncols=True,
                    disable=not (sys.stderr.isatty() if show_progress is None else show_progress))
    batches = list(_batches(todo, options.batch_size))
    with errors_path.open("a" if options.resume else "w", encoding="utf-8") as errlog:
        def consume(results: list[FileResult]) -> None:
            for r in results:
                summary.unaligned.update(r.unaligned)
                if r.ok:
                    r = _with_typesystem(ts_writer, r)
                if r.ok:
                    summary.ok += 1
                    summary.entities += r.entities
                    summary.modifiers += r.modifiers
                    summary.relations += r.relations
                    summary.dropped += r.dropped
                else:
                    summary.failed += 1
                    summary.failures.append(r)
                    errlog.write(json.dumps({"file": r.source, "error_type": r.error_type, "message": r.message}) + "\n")
                    errlog.flush()
            progress.update(len(results))

        if options.jobs > 1 and len(batches) > 1:
            threads = max(1, (os.cpu_count() or 1) // options.jobs)
            cfg = AnnotatorConfig(**{**asdict(config), "threads": threads})
            with ProcessPoolExecutor(options.jobs, initializer=_init_worker, initargs=(cfg,)) as pool:
                for results in pool.map(_worker_batch, batches, [options] * len(batches)):
                    consume(results)
        else:
            if annotator is None:
                annotator = KiwiAnnotator(config)
                annotator.initialize()
            for batch in batches:
                consume(process_batch(annotator, batch, options))
    progress.close()
    summary.seconds = time.time() - started
    return summary
