"""brat standoff (``NAME.txt`` + ``NAME.ann``) read and write, as the Kiwi MTSamples corpus uses it.

Offsets in ``.ann`` files are code points into the ``.txt`` (end exclusive). The covered
text of a span that crosses a line break continues on the next physical line of the
``.ann`` file, so lines that do not start with a brat id are continuation lines and are
skipped; the offsets, not the covered text, are authoritative.
"""

from __future__ import annotations

import re
from pathlib import Path

from kiwi_cas.core import schema
from kiwi_cas.core.files import find_files
from kiwi_cas.core.spans import Document, Extraction, Relation, Span
from kiwi_cas.errors import InputError

_TEXT_BOUND = re.compile(r"^T\d+$")
_RELATION = re.compile(r"^R\d+$")


class BratFormatError(InputError, code="bad_brat"):
    """An ``.ann`` file that cannot be read; the message names the file and line, never note text."""


def read_document(txt_path: Path) -> Document:
    """Read ``NAME.txt`` and, if present, ``NAME.ann`` into a :class:`Document`."""
    text = txt_path.read_bytes().decode("utf-8")  # no newline translation: offsets count "\r"
    ann_path = txt_path.with_suffix(".ann")
    doc = Document(name=txt_path.stem, text=text)
    if not ann_path.exists():
        return doc
    spans: dict[str, Span] = {}
    pending: list[tuple[str, str, int]] = []
    for lineno, line in enumerate(ann_path.read_bytes().decode("utf-8").split("\n"), 1):
        fields = line.split("\t")
        if _TEXT_BOUND.match(fields[0]):
            try:
                label, offsets = fields[1].split(" ", 1)
                if ";" in offsets:
                    raise BratFormatError(f"{ann_path.name}:{lineno}: discontinuous spans are not supported")
                start, end = (int(x) for x in offsets.split(" "))
            except (IndexError, ValueError) as exc:
                raise BratFormatError(f"{ann_path.name}:{lineno}: malformed text-bound line") from exc
            if not 0 <= start <= end <= len(text):
                raise BratFormatError(f"{ann_path.name}:{lineno}: offsets outside the text")
            spans[fields[0]] = Span(start, end, label)
        elif _RELATION.match(fields[0]):
            try:
                name, arg1, arg2 = fields[1].split(" ")
                pending.append((arg1.split(":", 1)[1], arg2.split(":", 1)[1], lineno))
            except (IndexError, ValueError) as exc:
                raise BratFormatError(f"{ann_path.name}:{lineno}: malformed relation line") from exc
            if name not in schema.BRAT_RELATION_NAMES:
                raise BratFormatError(f"{ann_path.name}:{lineno}: unknown relation name {name!r}")
    ext = Extraction()
    for span in spans.values():
        if schema.is_entity(span.label):
            ext.entities.append(span)
        elif schema.is_modifier(span.label):
            ext.modifiers.append(span)
        else:
            raise BratFormatError(f"{ann_path.name}: unknown label {span.label!r}")
    for a1, a2, lineno in pending:
        if a1 not in spans or a2 not in spans:
            raise BratFormatError(f"{ann_path.name}:{lineno}: relation refers to a missing span")
        ext.relations.append(Relation(spans[a1], spans[a2]))
    doc.annotations = ext
    return doc


def read_corpus(folder: Path) -> list[Document]:
    """All ``*.txt`` notes of a folder (recursive), sorted by path for reproducibility."""
    return [read_document(p) for p in find_files(folder, (".txt",))]


def format_ann(doc: Document) -> str:
    """The ``.ann`` text for a document: T lines in offset order, then R lines."""
    ext = doc.annotations
    spans = sorted(set(ext.entities) | set(ext.modifiers), key=lambda s: (s.start, s.end, s.label))
    ids = {s.key(): f"T{i}" for i, s in enumerate(spans, 1)}
    lines = [f"{ids[s.key()]}\t{s.label} {s.start} {s.end}\t{doc.text[s.start:s.end]}" for s in spans]
    rels = sorted({(ids[r.entity.key()], ids[r.modifier.key()]) for r in ext.relations},
                  key=lambda p: (int(p[0][1:]), int(p[1][1:])))
    lines += [f"R{i}\thasAttr Arg1:{a} Arg2:{b}" for i, (a, b) in enumerate(rels, 1)]
    return "\n".join(lines) + ("\n" if lines else "")
