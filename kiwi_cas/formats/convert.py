"""Import brat notes as XMI, and export the Kiwi annotations of XMI files, through a registry of formats.

Offsets in every format are character offsets into the note. A new export format is one
function and one line in :data:`EXPORTERS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cassis import Cas

from kiwi_cas.cas.io import atomic_write, load_xmi, serialize, write_typesystem
from kiwi_cas.cas.typesystem import merged_typesystem
from kiwi_cas.cas.writer import read_kiwi, write_kiwi
from kiwi_cas.core.files import document_name, find_files
from kiwi_cas.core.spans import Document, Extraction
from kiwi_cas.formats import brat, tables
from kiwi_cas.formats.medcat import medcat_document, medcattrainer_export


def brat_folder_to_xmi(source: Path, outdir: Path, entities_only: bool = False) -> int:
    ts = merged_typesystem(())
    n = 0
    for doc in brat.read_corpus(source):
        cas = Cas(typesystem=ts)
        cas.sofa_string = doc.text
        cas.sofa_mime = "text/plain"
        ext = doc.annotations
        if entities_only:
            ext = Extraction(entities=list(ext.entities))
        write_kiwi(cas, ext, "gold:brat")
        atomic_write(outdir / f"{doc.name}.xmi", serialize(cas, "xmi"))
        n += 1
    write_typesystem(ts, outdir / "TypeSystem.xml")
    return n


def _json(data) -> bytes:
    return json.dumps(data, indent=1).encode("utf-8")


def _brat(doc: Document, cas: Cas, outdir: Path) -> None:
    atomic_write(outdir / f"{doc.name}.txt", doc.text.encode("utf-8"))
    atomic_write(outdir / f"{doc.name}.ann", brat.format_ann(doc).encode("utf-8"))


def _medcat(doc: Document, cas: Cas, outdir: Path) -> None:
    atomic_write(outdir / f"{doc.name}.json", _json(medcat_document(doc)))


def _jsoncas(doc: Document, cas: Cas, outdir: Path) -> None:
    atomic_write(outdir / f"{doc.name}.json", serialize(cas, "jsoncas"))


@dataclass(frozen=True)
class ExportOptions:
    with_text: bool = False  # tables: add note text (PHI) columns
    validated: bool = False  # medcattrainer: mark everything as reviewed


def _medcattrainer(docs: list[Document], outdir: Path, options: ExportOptions) -> None:
    atomic_write(outdir / "medcattrainer_export.json", _json(medcattrainer_export(docs, validated=options.validated)))


def _parquet(docs: list[Document], outdir: Path, options: ExportOptions) -> None:
    tables.write_parquet(docs, outdir, options.with_text)


def _csv(docs: list[Document], outdir: Path, options: ExportOptions) -> None:
    tables.write_csv(docs, outdir, options.with_text)


@dataclass(frozen=True)
class Exporter:
    help: str
    per_document: Callable[[Document, Cas, Path], None] | None = None
    collection: Callable[[list[Document], Path, ExportOptions], None] | None = None
    options: frozenset[str] = frozenset()  # the ExportOptions fields this format reads


EXPORTERS: dict[str, Exporter] = {
    "brat": Exporter("NAME.txt + NAME.ann", per_document=_brat),
    "medcat": Exporter("NAME.json in MedCAT's output shape", per_document=_medcat),
    "medcattrainer": Exporter("one project export for review", collection=_medcattrainer,
                              options=frozenset({"validated"})),
    "jsoncas": Exporter("NAME.json, UIMA JSON CAS", per_document=_jsoncas),
    "parquet": Exporter("entities.parquet + relations.parquet", collection=_parquet, options=frozenset({"with_text"})),
    "csv": Exporter("entities.csv + relations.csv", collection=_csv, options=frozenset({"with_text"})),
}


def export_folder(source: Path, outdir: Path, fmt: str, typesystems: tuple[Path, ...] = (),
                  options: ExportOptions = ExportOptions()) -> int:
    """Kiwi annotations of XMI files -> one of :data:`EXPORTERS`; returns the number of documents."""
    exporter = EXPORTERS[fmt]
    files = find_files(source, (".xmi",))
    docs = []
    for path in files:
        cas = load_xmi(path, typesystems).cas
        name = document_name(path)
        if "with_text" in exporter.options and source.is_dir():  # tables: the path inside the folder names the document
            name = (path.parent.relative_to(source) / name).as_posix()
        doc = Document(name, cas.sofa_string or "", read_kiwi(cas))
        if exporter.per_document:
            exporter.per_document(doc, cas, outdir)
        docs.append(doc)
    if exporter.collection:
        exporter.collection(docs, outdir, options)
    return len(files)
