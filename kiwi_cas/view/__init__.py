"""``kiwi-cas view``: one self-contained HTML file to inspect annotated notes (no server, no network)."""

from __future__ import annotations

from pathlib import Path

from kiwi_cas.cas.io import atomic_write
from kiwi_cas.view.data import document_json, gold_scores, read_folder
from kiwi_cas.view.page import render


def build_view(source: Path, output: Path, gold: Path | None = None, typesystems: tuple[Path, ...] = ()) -> dict:
    """Write the viewer for a file or folder of outputs (XMI or brat); returns what it holds."""
    from kiwi_cas.formats.documents import load_documents

    docs, failed = read_folder(source, typesystems)
    gold_docs = {d.name: d for d in load_documents(gold, typesystems)} if gold else {}
    pages = [document_json(d, gold_docs.get(d.name) if gold else None) for d in docs]
    scores = gold_scores(list(gold_docs.values()), docs) if gold else None
    atomic_write(output, render(pages, failed, scores, source.name).encode("utf-8"))
    return {"documents": len(docs), "failed": len(failed), "gold": len(gold_docs)}
