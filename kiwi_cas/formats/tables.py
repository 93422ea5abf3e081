"""Flat tables of Kiwi annotations: one row per entity, one row per relation (Parquet or CSV).

What analysts load next into pandas, DuckDB or Spark. Entities table columns:

- ``document`` (path relative to the exported folder, without suffix), ``entity_id``
  (index within the document, in offset order), ``type``, ``begin``, ``end``
  (code-point offsets into the note), ``confidence``;
- ``negated``, ``uncertain``, ``conditional`` (a linked modifier of that type),
  ``subject`` (cTAKES's subject vocabulary: patient, family_member, donor_family_member,
  donor_other, other; ``patient`` when no subject modifier is linked);
- one column per modifier type (``mod_bodyloc``, ``mod_severity``, ``mod_temporal`` ...):
  the linked modifiers, in Parquet a list of ``{begin, end, text}`` structs, in CSV
  ``begin-end`` items joined by ``;``;
- ``text`` only with ``--with-text`` (note text is PHI: off by default; modifier texts too).

Relations table: ``document, entity_id, entity_type, entity_begin, entity_end,
modifier_type, modifier_begin, modifier_end, confidence`` (+ ``entity_text``,
``modifier_text`` with ``--with-text``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from kiwi_cas.cas.io import atomic_write
from kiwi_cas.core import schema
from kiwi_cas.core.spans import Document
from kiwi_cas.core.subject import assertion_of
from kiwi_cas.errors import SetupError

FLAGS = ("negated", "uncertain", "conditional")  # columns named as the Assertion fields


def entity_rows(doc: Document, with_text: bool = False) -> list[dict]:
    ann = doc.annotations
    linked: dict[tuple, list] = {}
    for r in ann.relations:
        linked.setdefault(r.entity.key(), []).append(r.modifier)
    rows = []
    for i, e in enumerate(_entities_in_order(doc)):
        mods = sorted(linked.get(e.key(), []), key=lambda s: (s.start, s.end))
        assertion = assertion_of(doc.text, mods)
        row = {"document": doc.name, "entity_id": i, "type": e.label, "begin": e.start, "end": e.end,
               "confidence": round(float(e.confidence), 4)}
        if with_text:
            row["text"] = doc.text[e.start:e.end]
        row.update({flag: getattr(assertion, flag) for flag in FLAGS})
        row["subject"] = assertion.subject
        for label in schema.MODIFIER_LABELS:
            row[f"mod_{label}"] = [{"begin": m.start, "end": m.end,
                                    "text": doc.text[m.start:m.end] if with_text else None}
                                   for m in mods if m.label == label]
        rows.append(row)
    return rows


def _entities_in_order(doc: Document) -> list:
    """Entities in offset order: their index is the ``entity_id`` both tables use."""
    return sorted(doc.annotations.entities, key=lambda s: (s.start, s.end, s.label))


def relation_rows(doc: Document, with_text: bool = False) -> list[dict]:
    ids = {e.key(): i for i, e in enumerate(_entities_in_order(doc))}
    rows = []
    for r in sorted(doc.annotations.relations, key=lambda r: (r.entity.start, r.entity.end, r.modifier.start)):
        row = {"document": doc.name, "entity_id": ids.get(r.entity.key()), "entity_type": r.entity.label,
               "entity_begin": r.entity.start, "entity_end": r.entity.end, "modifier_type": r.modifier.label,
               "modifier_begin": r.modifier.start, "modifier_end": r.modifier.end,
               "confidence": round(float(r.confidence), 4)}
        if with_text:
            row["entity_text"] = doc.text[r.entity.start:r.entity.end]
            row["modifier_text"] = doc.text[r.modifier.start:r.modifier.end]
        rows.append(row)
    return rows


def _arrow_schemas(with_text: bool):
    import pyarrow as pa

    span = pa.list_(pa.struct([("begin", pa.int32()), ("end", pa.int32()), ("text", pa.string())]))
    ent = [("document", pa.string()), ("entity_id", pa.int32()), ("type", pa.string()), ("begin", pa.int32()),
           ("end", pa.int32()), ("confidence", pa.float64())]
    if with_text:
        ent.append(("text", pa.string()))
    ent += [(flag, pa.bool_()) for flag in FLAGS] + [("subject", pa.string())]
    ent += [(f"mod_{label}", span) for label in schema.MODIFIER_LABELS]
    rel = [("document", pa.string()), ("entity_id", pa.int32()), ("entity_type", pa.string()),
           ("entity_begin", pa.int32()), ("entity_end", pa.int32()), ("modifier_type", pa.string()),
           ("modifier_begin", pa.int32()), ("modifier_end", pa.int32()), ("confidence", pa.float64())]
    if with_text:
        rel += [("entity_text", pa.string()), ("modifier_text", pa.string())]
    return pa.schema(ent), pa.schema(rel)


def write_parquet(docs: list[Document], outdir: Path, with_text: bool = False) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise SetupError("Parquet export needs pyarrow: pip install 'kiwi_cas[tables]'", "missing_pyarrow") from None
    ent_schema, rel_schema = _arrow_schemas(with_text)
    for name, rows, sch in (("entities", [r for d in docs for r in entity_rows(d, with_text)], ent_schema),
                            ("relations", [r for d in docs for r in relation_rows(d, with_text)], rel_schema)):
        buf = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows, schema=sch), buf)
        atomic_write(outdir / f"{name}.parquet", buf.getvalue().to_pybytes())


def write_csv(docs: list[Document], outdir: Path, with_text: bool = False) -> None:
    for name, rows in (("entities", [r for d in docs for r in entity_rows(d, with_text)]),
                       ("relations", [r for d in docs for r in relation_rows(d, with_text)])):
        buf = io.StringIO()
        fields = list(rows[0]) if rows else _plain_header(with_text)[0 if name == "entities" else 1]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (";".join(f"{m['begin']}-{m['end']}" for m in v) if isinstance(v, list) else v)
                             for k, v in row.items()})
        atomic_write(outdir / f"{name}.csv", buf.getvalue().encode("utf-8"))


def _plain_header(with_text: bool) -> tuple[list[str], list[str]]:
    ent = ["document", "entity_id", "type", "begin", "end", "confidence"] + (["text"] if with_text else [])
    ent += list(FLAGS) + ["subject"] + [f"mod_{label}" for label in schema.MODIFIER_LABELS]
    rel = ["document", "entity_id", "entity_type", "entity_begin", "entity_end", "modifier_type", "modifier_begin",
           "modifier_end", "confidence"] + (["entity_text", "modifier_text"] if with_text else [])
    return ent, rel
