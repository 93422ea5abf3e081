"""brat <-> XMI conversion of Kiwi annotations (offsets are character offsets into the note)."""

from __future__ import annotations

from pathlib import Path

from cassis import Cas

from kiwi_cas.cas.io import atomic_write, load_xmi, serialize, write_typesystem
from kiwi_cas.cas.kiwi_annotations import read_kiwi, write_kiwi
from kiwi_cas.cas.typesystem import merged_typesystem
from kiwi_cas.documents import document_name
from kiwi_cas.formats import brat
from kiwi_cas.spans import Document, Extraction


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


def export_folder(source: Path, outdir: Path, fmt: str, typesystems: tuple[Path, ...] = ()) -> int:
    """Kiwi annotations of XMI files -> brat, MedCAT JSON, a MedCATtrainer export or UIMA JSON CAS."""
    import json

    from kiwi_cas.formats.medcat import medcat_document, medcattrainer_export

    files = [source] if source.is_file() else sorted(source.rglob("*.xmi"))
    docs = []
    for path in files:
        cas = load_xmi(path, typesystems).cas
        doc = Document(document_name(path), cas.sofa_string or "", read_kiwi(cas))
        if fmt == "brat":
            atomic_write(outdir / f"{doc.name}.txt", doc.text.encode("utf-8"))
            atomic_write(outdir / f"{doc.name}.ann", brat.format_ann(doc).encode("utf-8"))
        elif fmt == "medcat":
            atomic_write(outdir / f"{doc.name}.json", json.dumps(medcat_document(doc), indent=1).encode("utf-8"))
        elif fmt == "jsoncas":
            atomic_write(outdir / f"{doc.name}.json", serialize(cas, "jsoncas"))
        elif fmt == "medcattrainer":
            docs.append(doc)
        else:
            raise ValueError(f"unknown format {fmt!r}")
    if fmt == "medcattrainer":
        atomic_write(outdir / "medcattrainer_export.json",
                     json.dumps(medcattrainer_export(docs), indent=1).encode("utf-8"))
    return len(files)
