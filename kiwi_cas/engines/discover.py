"""Which inputs a run has and where each one's output goes.

Files, folders (recursive ``*.xmi`` and ``*.txt``) and globs become work items; a folder's
files keep their relative paths under the output folder, files named directly go to it.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

from kiwi_cas.annotate.job import OUTPUT_FORMATS
from kiwi_cas.core.files import find_files
from kiwi_cas.errors import UsageError

#: names cTAKES and other UIMA tools give XMI files; a plain ``.xml`` counts when its root is xmi:XMI
XMI_SUFFIXES = (".xmi", ".xmicas.xml", ".xmi-cas.xml")
TEXT_SUFFIX = ".txt"
_XMI_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?XMI[\s>/]")


@dataclass(frozen=True)
class WorkItem:
    source: Path
    output: Path


def _xmi_suffix(name: str) -> str | None:
    lower = name.lower()
    return next((s for s in XMI_SUFFIXES + (".xml",) if lower.endswith(s)), None)


def output_name(source: Path, output_format: str) -> str:
    """An XMI input keeps its name (``X.xmicas.xml`` -> ``X.xmicas.xml``); ``X.txt`` -> ``X.xmi``;
    with ``--output-format jsoncas``, the XMI or text suffix becomes ``.json``."""
    name = source.name
    suffix = TEXT_SUFFIX if name.lower().endswith(TEXT_SUFFIX) else _xmi_suffix(name)
    if suffix and not (output_format == "xmi" and suffix != TEXT_SUFFIX):
        name = name[: -len(suffix)] + OUTPUT_FORMATS[output_format]
    elif not suffix:
        name += OUTPUT_FORMATS[output_format]
    return name


def _has_xmi_root(path: Path) -> bool:
    """A ``.xml`` file whose root element is xmi:XMI (and not, say, a TypeSystem.xml)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return b"http://www.omg.org/XMI" in head and _XMI_ROOT.search(head) is not None


def is_input(path: Path) -> bool:
    """Whether a file found in a folder is a document: a note (``.txt``) or an XMI CAS by name or root."""
    lower = path.name.lower()
    if lower.endswith(TEXT_SUFFIX) or any(lower.endswith(s) for s in XMI_SUFFIXES):
        return True
    return lower.endswith(".xml") and _has_xmi_root(path)


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
            for f in find_files(path, (TEXT_SUFFIX, ".xmi", ".xml")):
                if is_input(f):
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
        raise UsageError("no input files found (looked for *.txt, *.xmi, *.xmicas.xml, *.xmi-cas.xml and *.xml "
                         "holding an xmi:XMI root)")
    return items
