"""The local engine: a corpus run on this machine, in-process or over a pool of worker processes.

Each batch of inputs goes through :func:`kiwi_cas.annotate.job.annotate_sources` in a worker
(the model loads once per worker), and each output is written there atomically (temp file,
fsync, rename), so ``--resume`` can trust that any output present is complete. The driver
only feeds the :class:`~kiwi_cas.engines.ledger.RunLedger` and the progress bar.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from kiwi_cas.annotate.annotator import AnnotatorConfig, KiwiAnnotator
from kiwi_cas.annotate.job import Outcome, ReadOptions, Source, annotate_sources
from kiwi_cas.cas.io import atomic_write
from kiwi_cas.engines.discover import WorkItem
from kiwi_cas.engines.ledger import FileResult, RunLedger, RunSummary
from kiwi_cas.cas.io import is_text_path, resolve_typesystems
from kiwi_cas.errors import SetupError, describe, from_os_error

#: write errors that no other file would escape: the run stops (exit 5) instead of failing file after file
_FATAL_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


@dataclass(frozen=True)
class RunOptions:
    """How the run goes (the documents' own reading options are in ``read``)."""

    outdir: Path
    read: ReadOptions = ReadOptions()
    resume: bool = False
    jobs: int = 1
    batch_size: int = 8


def process_items(annotator: KiwiAnnotator, items: list[WorkItem], read: ReadOptions) -> list[FileResult]:
    """Annotate a batch of work items and write each output atomically; one result per item."""
    outcomes = annotate_sources(annotator, [Source.from_path(i.source) for i in items], read)
    return [_write(item, outcome) for item, outcome in zip(items, outcomes)]


def _write(item: WorkItem, outcome: Outcome) -> FileResult:
    if not outcome.ok:
        return FileResult(str(item.source), str(item.output), False, *outcome.error, counts=outcome.counts)
    try:
        atomic_write(item.output, outcome.output)
    except OSError as exc:
        if exc.errno in _FATAL_WRITE_ERRORS:
            raise from_os_error(exc, f"cannot write {item.output}") from None
        return FileResult(str(item.source), str(item.output), False, *describe(exc))
    return FileResult(str(item.source), str(item.output), True, counts=outcome.counts,
                      typesystems=outcome.typesystems)


# ---- worker processes ------------------------------------------------------------------------

_worker: KiwiAnnotator | None = None


def _die_with_parent(parent: int) -> None:
    """Linux: a worker gets SIGKILL when the driver dies (kill -9 included), so none is left behind
    writing outputs or holding its model's memory."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the pool's own shutdown still ends workers when the driver exits normally
    if os.getppid() != parent:  # the driver died before the signal was armed
        os._exit(1)


def _init_worker(config: AnnotatorConfig, parent: int) -> None:
    global _worker
    _die_with_parent(parent)
    _worker = KiwiAnnotator(config)
    _worker.initialize()


def _worker_batch(items: list[WorkItem], read: ReadOptions) -> list[FileResult]:
    assert _worker is not None
    return process_items(_worker, items, read)


def _batches(items: list[WorkItem], size: int) -> Iterator[list[WorkItem]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def open_ledger(items: list[WorkItem], options: RunOptions, **kwargs) -> RunLedger:
    """The run's ledger over ``options.outdir``; an input's typesystems resolved as its worker reads it."""
    return RunLedger(options.outdir, items, options.resume,
                     typesystems_of=lambda item: () if is_text_path(item.source)
                     else resolve_typesystems(item.source, options.read.typesystems), **kwargs)


def progress_bar(total: int, desc: str, show: bool | None) -> tqdm:
    """A notes progress bar on stderr; shown by default only on a terminal."""
    return tqdm(total=total, unit="note", desc=desc, dynamic_ncols=True,
                disable=not (sys.stderr.isatty() if show is None else show))


def run_local(items: list[WorkItem], config: AnnotatorConfig, options: RunOptions,
              annotator: KiwiAnnotator | None = None, show_progress: bool | None = None) -> RunSummary:
    """Annotate ``items`` into ``options.outdir``; ``annotator`` (already loaded) is used when running in-process."""
    ledger = open_ledger(items, options)
    started = time.time()
    progress = progress_bar(len(ledger.todo), "annotate", show_progress)
    batches = list(_batches(ledger.todo, options.batch_size))
    try:
        if options.jobs > 1 and len(batches) > 1:
            threads = max(1, (os.cpu_count() or 1) // options.jobs)
            cfg = dataclasses.replace(config, extractor=dataclasses.replace(config.extractor, threads=threads))
            try:
                with ProcessPoolExecutor(options.jobs, initializer=_init_worker, initargs=(cfg, os.getpid())) as pool:
                    for results in pool.map(_worker_batch, batches, [options.read] * len(batches)):
                        _record(ledger, progress, results)
            except BrokenProcessPool as exc:
                raise SetupError("a worker process died (killed, out of memory, or its model failed to load); "
                                 "outputs written so far are complete: rerun with --resume, or with --jobs 1 to "
                                 "see the cause", "worker_died") from exc
        else:
            if annotator is None:
                annotator = KiwiAnnotator(config)
                annotator.initialize()
            for batch in batches:
                _record(ledger, progress, process_items(annotator, batch, options.read))
    finally:
        ledger.close()
        progress.close()
    ledger.summary.seconds = time.time() - started
    return ledger.summary


def _record(ledger: RunLedger, progress: tqdm, results: list[FileResult]) -> None:
    for r in results:
        ledger.record(r)
    progress.update(len(results))
