"""Finding documents in folders, and naming them, the same way for every command."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

#: suffixes a document name drops, so that gold, predictions and outputs pair up
DOCUMENT_SUFFIXES = (".xmi", ".json", ".txt", ".ann")


def find_files(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files under ``root`` (recursive; ``root`` itself if it is a file) with one of ``suffixes``,
    sorted, hidden files (our own temp files among them) skipped."""
    root = Path(root)
    if root.is_file():
        return [root]
    wanted = tuple(s.lower() for s in suffixes)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in wanted and p.is_file()
                  and not p.name.startswith("."))


def document_name(path: Path) -> str:
    """``NAME.txt``, ``NAME.ann``, ``NAME.xmi`` -> ``NAME`` (so gold and predictions pair up)."""
    name = path.name
    for suffix in DOCUMENT_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
