"""One document in, one document out: the unit of work that every engine and service calls.

A :class:`Source` is a document as bytes (a file's content, a message body, a request) or
as a path; :func:`annotate_sources` loads a batch of them, annotates them with one
extractor call, and returns one :class:`Outcome` each: the output bytes (XMI or JSON CAS)
and what was written, or the error that stopped that document. Nothing is written to
disk here: the local engine, the PBJ worker and services decide where outputs go.

Failures are per document: a document that cannot be read is reported alone; if the
batched extractor call fails, the batch is split so that only the culprit fails. Errors
that are not about one document (a bad option, a missing model, a full disk) propagate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from kiwi_cas.annotate.annotator import KiwiAnnotator
from kiwi_cas.cas.io import LoadedCas, check_xml_text, is_text_path, load_text_bytes, load_xmi_bytes, read_bytes, \
    replace_invalid_xml_chars, resolve_typesystems, serialize
from kiwi_cas.cas.safexml import DEFAULT_MAX_BYTES
from kiwi_cas.core.spans import Counts
from kiwi_cas.errors import KiwiError, Kind, describe

OUTPUT_FORMATS = {"xmi": ".xmi", "jsoncas": ".json"}


@dataclass(frozen=True)
class ReadOptions:
    """How documents are read and written back."""

    typesystems: tuple[Path, ...] = ()  # input typesystems; default: TypeSystem.xml beside each file
    lenient: bool = False  # drop (and count) structures of unknown types instead of failing the document
    encoding: str = "utf-8"  # of plain-text notes
    max_bytes: int = DEFAULT_MAX_BYTES
    output_format: str = "xmi"  # xmi | jsoncas
    replace_invalid_xml_chars: bool = False  # plain-text notes: same-length substitution by spaces


@dataclass(frozen=True)
class Source:
    """A document to annotate: ``data`` (bytes) or ``path``; ``name`` identifies it in reports."""

    name: str
    data: bytes | None = None
    path: Path | None = None
    text: bool = False  # a plain-text note rather than XMI
    typesystems: tuple[str, ...] | None = None  # resolved typesystem paths; None: from the options / the path

    @classmethod
    def from_path(cls, path: Path) -> "Source":
        return cls(str(path), path=Path(path), text=is_text_path(Path(path)))


@dataclass
class Outcome:
    """The result for one source: output bytes and counts, or an error (code, message without note text)."""

    source: Source
    output: bytes | None = None
    counts: Counts = field(default_factory=Counts)
    typesystems: tuple[str, ...] = ()  # typesystem files the output needs
    error: tuple[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _load(source: Source, options: ReadOptions) -> LoadedCas:
    data = source.data if source.data is not None else read_bytes(source.path, options.max_bytes)
    if source.text:
        loaded = load_text_bytes(data, options.encoding)
        if options.replace_invalid_xml_chars:
            loaded.cas.sofa_string = replace_invalid_xml_chars(loaded.cas.sofa_string or "")
        return loaded
    ts_paths = source.typesystems
    if ts_paths is None:
        ts_paths = (resolve_typesystems(source.path, options.typesystems) if source.path is not None
                    else tuple(str(p.resolve()) for p in options.typesystems))
    return load_xmi_bytes(data, ts_paths, options.lenient, options.max_bytes)


def _failed(source: Source, exc: Exception) -> Outcome:
    """Per-document failure; errors about the whole run (usage, setup, system) propagate."""
    if isinstance(exc, KiwiError) and exc.kind is not Kind.INPUT:
        raise exc
    return Outcome(source, error=describe(exc))


def annotate_sources(annotator: KiwiAnnotator, sources: Sequence[Source], options: ReadOptions) -> list[Outcome]:
    """Load, annotate (one extractor call for the batch), serialize. One outcome per source, in order."""
    outcomes: dict[int, Outcome] = {}
    loaded: list[tuple[int, LoadedCas]] = []
    view = annotator.config.view_name
    for i, source in enumerate(sources):
        try:
            lc = _load(source, options)
            if options.output_format == "xmi" and not (source.text and options.replace_invalid_xml_chars):
                check_xml_text(_view_text(lc, view))
            loaded.append((i, lc))
        except Exception as exc:  # anything about one document must not stop the others
            outcomes[i] = _failed(source, exc)
    batches = [loaded] if len(loaded) > 1 else [[x] for x in loaded]
    while batches:
        batch = batches.pop(0)
        try:
            counts = annotator.process_batch([lc.cas for _, lc in batch])
        except Exception as exc:
            if len(batch) > 1:  # isolate the document that failed
                batches = [[x] for x in batch] + batches
                continue
            outcomes[batch[0][0]] = _failed(sources[batch[0][0]], exc)
            continue
        for (i, lc), c in zip(batch, counts):
            try:
                output = serialize(lc.cas, options.output_format)
            except Exception as exc:
                outcomes[i] = _failed(sources[i], exc)
                continue
            c.dropped = lc.dropped
            if lc.dropped:
                kinds = ", ".join(f"{n} {k}" for n, k in lc.dropped_types.most_common())
                c.warnings.append(f"--lenient dropped {lc.dropped} structures of types missing from the "
                                  f"typesystem: {kinds}")
            outcomes[i] = Outcome(sources[i], output, c, lc.typesystem_paths)
    return [outcomes[i] for i in range(len(sources))]


def annotate_bytes(annotator: KiwiAnnotator, data: bytes, *, text: bool = False, name: str = "<bytes>",
                   options: ReadOptions = ReadOptions()) -> Outcome:
    """One document from memory: XMI bytes (``text=False``) or a plain-text note."""
    return annotate_sources(annotator, [Source(name, data=data, text=text)], options)[0]


def annotate_path(annotator: KiwiAnnotator, path: str | Path, options: ReadOptions = ReadOptions()) -> Outcome:
    """One file (``.txt`` as a plain-text note, anything else as XMI); nothing is written."""
    return annotate_sources(annotator, [Source.from_path(Path(path))], options)[0]


def _view_text(lc: LoadedCas, name: str) -> str:
    try:
        return lc.cas.get_view(name).sofa_string or ""
    except KeyError:
        return ""  # the annotator reports the missing view
