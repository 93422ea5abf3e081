"""Annotated documents from a folder: brat (``.txt`` + ``.ann``) or XMI carrying Kiwi annotations.

Used by training and evaluation, which work on plain :class:`Document` objects.
"""

from __future__ import annotations

from pathlib import Path

from kiwi_cas.cas.io import load_xmi
from kiwi_cas.cas.kiwi_annotations import read_kiwi
from kiwi_cas.formats import brat
from kiwi_cas.spans import Document


def document_name(path: Path) -> str:
    """``NAME.txt``, ``NAME.ann``, ``NAME.xmi`` -> ``NAME`` (so gold and predictions pair up)."""
    name = path.name
    for suffix in (".xmi", ".json", ".txt", ".ann"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def load_documents(folder: Path, typesystems: tuple[Path, ...] = (), view: str = "_InitialView") -> list[Document]:
    """All documents of a folder (recursive). XMI wins where a folder holds both forms."""
    folder = Path(folder)
    if folder.is_file():
        files = [folder]
    else:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".xmi", ".txt") and p.is_file())
    xmi_names = {document_name(p) for p in files if p.suffix.lower() == ".xmi"}
    docs: list[Document] = []
    for path in files:
        if path.suffix.lower() == ".xmi":
            cas = load_xmi(path, typesystems).cas.get_view(view)
            docs.append(Document(document_name(path), cas.sofa_string or "", read_kiwi(cas)))
        elif document_name(path) not in xmi_names:
            doc = brat.read_document(path)
            docs.append(Document(document_name(path), doc.text, doc.annotations))
    return docs
