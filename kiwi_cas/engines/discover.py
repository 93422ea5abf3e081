"""Which inputs a run has and where each one's output goes.

Files, folders (recursive ``*.xmi`` and ``*.txt``) and globs become work items; a folder's
files keep their relative paths under the output folder, files named directly go to it.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from kiwi_cas.annotate.job import OUTPUT_FORMATS
from kiwi_cas.core.files import find_files
from kiwi_cas.errors import UsageError

INPUT_SUFFIXES = (".xmi", ".txt")


@dataclass(frozen=True)
class WorkItem:
    source: Path
    output: Path


def output_name(source: Path, output_format: str) -> str:
    name = source.name
    if source.suffix.lower() in INPUT_SUFFIXES:
        name = source.stem
    return name + OUTPUT_FORMATS[output_format]


def discover(inputs: list[str], outdir: Path, output_format: str = "xmi") -> list[WorkItem]:
    """Work items for INPUTS; a usage error when nothing is found or two inputs would share an output."""
    items: list[WorkItem] = []
    seen_out: dict[Path, Path] = {}
    outdir_res = outdir.resolve()

    def add(src: Path, rel_parent: Path) -> None:
        out = outdir / rel_parent / output_name(src, output_format)
        if src.resolve().is_relative_to(outdir_res):
            return  # never read our own outputs as inputs
        if out in seen_out:
            raise UsageError(f"{src} and {seen_out[out]} would both write {out}")
        seen_out[out] = src
        items.append(WorkItem(src, out))

    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            for f in find_files(path, INPUT_SUFFIXES):
                add(f, f.parent.relative_to(path))
        elif path.is_file():
            add(path, Path("."))
        else:
            files = [m for m in sorted(Path(m) for m in glob.glob(spec, recursive=True)) if m.is_file()]
            if not files:
                raise UsageError(f"no input matches {spec!r}")
            for f in files:
                add(f, Path("."))
    if not items:
        raise UsageError("no input files found (looked for *.xmi and *.txt)")
    return items
