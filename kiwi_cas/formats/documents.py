"""Annotated documents from a folder: brat (``.txt`` + ``.ann``) or XMI carrying Kiwi annotations.

Used by training and evaluation, which work on plain :class:`Document` objects.
"""

from __future__ import annotations

import random
from pathlib import Path

from kiwi_cas.cas.io import load_xmi
from kiwi_cas.cas.writer import read_kiwi
from kiwi_cas.core.files import document_name, find_files
from kiwi_cas.core.spans import Document
from kiwi_cas.formats import brat


def load_documents(folder: Path, typesystems: tuple[Path, ...] = (), view: str = "_InitialView") -> list[Document]:
    """All documents of a folder (recursive). XMI wins where a folder holds both forms."""
    files = find_files(folder, (".xmi", ".txt"))
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


def held_out(n: int, k: int) -> set[int]:
    """Indices of the k notes (of n, sorted by path) held out as dev: seeded with 0, the same for every command."""
    order = list(range(n))
    random.Random(0).shuffle(order)
    return set(order[:k])
