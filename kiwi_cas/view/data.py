"""What the HTML viewer shows, as plain JSON-able data: documents, spans with their features, relations,
the gold diff and the run's status. Reads XMI (Kiwi annotations and their features) or brat folders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kiwi_cas.core import schema
from kiwi_cas.core.evaluate import evaluate, match_items, match_key
from kiwi_cas.core.files import document_name, find_files
from kiwi_cas.core.spans import Document, Extraction, Relation, Span
from kiwi_cas.core.subject import assertion_of
from kiwi_cas.errors import KiwiError, Kind, UsageError, describe

@dataclass
class ViewDoc:
    name: str
    text: str
    extraction: Extraction
    features: dict[tuple[int, int, str], dict] = field(default_factory=dict)  # span key -> extra features


def _fs_features(fs) -> dict:
    out = {}
    for name in ("confidence", "extractor", "label"):
        value = fs.get(name)
        if value is not None:
            out[name] = round(value, 4) if isinstance(value, float) else value
    twin = fs.get("ctakesTwin")
    if twin is not None:
        out["ctakesTwin"] = f"{twin.type.name.rsplit('.', 1)[-1]} [{twin.begin}:{twin.end}]"
    return out


def _read_xmi(path: Path, typesystems: tuple[Path, ...]) -> ViewDoc:
    from kiwi_cas.cas.io import load_xmi
    from kiwi_cas.cas.writer import read_kiwi

    cas = load_xmi(path, typesystems).cas
    ext = read_kiwi(cas)
    features = {}
    if cas.typesystem.contains_type(schema.ENTITY_SUPERTYPE):
        for fs in cas.select_all_fs():
            label = schema.TYPE_TO_LABEL.get(fs.type.name)
            if label is not None:
                features[(fs.begin, fs.end, label)] = _fs_features(fs)
    return ViewDoc(document_name(path), cas.sofa_string or "", ext, features)


def read_folder(source: Path, typesystems: tuple[Path, ...] = ()) -> tuple[list[ViewDoc], list[dict]]:
    """Documents of a file or folder (XMI wins over brat of the same name) and the ones that failed."""
    from kiwi_cas.formats import brat

    files = [source] if source.is_file() else find_files(source, (".xmi", ".txt"))
    xmi_names = {document_name(p) for p in files if p.suffix.lower() == ".xmi"}
    docs, failed = [], []
    for path in files:
        rel = path.name if source.is_file() else path.relative_to(source).as_posix()
        try:
            if path.suffix.lower() == ".xmi":
                docs.append(_read_xmi(path, typesystems))
            elif document_name(path) not in xmi_names:
                d = brat.read_document(path)
                docs.append(ViewDoc(document_name(path), d.text, d.annotations))
        except Exception as exc:  # one bad file is listed, never fatal
            if isinstance(exc, KiwiError) and exc.kind is not Kind.INPUT:
                raise
            code, message = describe(exc)
            failed.append({"file": rel, "error_type": code, "message": message})
    if not docs and not failed:
        raise UsageError(f"no XMI or brat documents in {source}")
    return docs, failed + _run_failures(source)


def _run_failures(source: Path) -> list[dict]:
    """Failures a run recorded in the folder (errors.jsonl of kiwi-cas annotate)."""
    errors = source / "errors.jsonl" if source.is_dir() else None
    if errors is None or not errors.exists():
        return []
    out = []
    for line in errors.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            out.append({"file": str(row["file"]), "error_type": row.get("error_type"), "message": row.get("message")})
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _assertions(text: str, relations: list[Relation]) -> list[str]:
    """The entity's assertion as the page's pattern names."""
    a = assertion_of(text, (r.modifier for r in relations))
    flags = {"negated": a.negated, "uncertain": a.uncertain, "conditional": a.conditional,
             "other_subject": a.other_subject}
    return [name for name, on in flags.items() if on]


def document_json(doc: ViewDoc, gold: Document | None = None) -> dict:
    """One document for the page: text, spans (entities, modifiers, gold misses), relations."""
    text, ext = doc.text, doc.extraction
    spans: list[dict] = []
    index: dict[tuple[int, int, str], int] = {}
    by_entity: dict[tuple, list[Relation]] = {}
    for r in ext.relations:
        by_entity.setdefault(r.entity.key(), []).append(r)
    # matched as `kiwi-cas evaluate` matches them
    gold_items = match_items(gold.annotations if gold is not None else Extraction(), text)
    gold_keys = gold_items["ner"] | gold_items["modifier"]

    def add(span: Span, kind: str, diff: str | None) -> int:
        key = span.key()
        if key in index:
            return index[key]
        item = {"id": len(spans), "kind": kind, "label": span.label, "begin": span.start, "end": span.end,
                "confidence": round(float(span.confidence), 4), "features": doc.features.get(key, {})}
        if kind == "entity":
            item["assertions"] = _assertions(text, by_entity.get(key, []))
        if diff:
            item["diff"] = diff
        index[key] = item["id"]
        spans.append(item)
        return item["id"]

    def diff_of(span: Span) -> str | None:
        return None if gold is None else ("tp" if match_key(span, text) in gold_keys else "fp")

    for s in ext.entities:
        add(s, "entity", diff_of(s))
    for s in ext.modifiers:
        add(s, "modifier", diff_of(s))
    relations = []
    for r in ext.relations:
        e, m = add(r.entity, "entity", diff_of(r.entity)), add(r.modifier, "modifier", diff_of(r.modifier))
        item = {"entity": e, "modifier": m, "confidence": round(float(r.confidence), 4)}
        if gold is not None:
            key = (match_key(r.entity, text), match_key(r.modifier, text))
            item["diff"] = "tp" if key in gold_items["re"] else "fp"
        relations.append(item)
    if gold is not None:
        pred_items = match_items(ext, text)
        pred_keys = pred_items["ner"] | pred_items["modifier"]
        for s in (*gold.annotations.entities, *gold.annotations.modifiers):
            if match_key(s, text) not in pred_keys:
                kind = "entity" if schema.is_entity(s.label) else "modifier"
                spans.append({"id": len(spans), "kind": kind, "label": s.label, "begin": s.start, "end": s.end,
                              "confidence": 1.0, "features": {}, "diff": "fn", "assertions": []})
    counts = {"entities": len(ext.entities), "modifiers": len(ext.modifiers), "relations": len(ext.relations)}
    return {"name": doc.name, "text": text, "spans": spans, "relations": relations, "counts": counts}


def gold_scores(gold: list[Document], docs: list[ViewDoc]) -> dict:
    """Per-type exact P/R/F1, computed exactly as ``kiwi-cas evaluate`` does."""
    pred = [Document(d.name, d.text, d.extraction) for d in docs]
    names = {d.name for d in pred}
    report = evaluate([g for g in gold if g.name in names], pred)
    out = {}
    for task in ("ner", "modifier", "re"):
        exact = report.scores[task]["exact"]
        out[task] = {label: {"tp": sc.tp_pred, "fp": sc.n_pred - sc.tp_pred, "fn": sc.n_gold - sc.tp_gold,
                             "p": round(sc.precision, 4), "r": round(sc.recall, 4), "f1": round(sc.f1, 4)}
                     for label, sc in sorted(exact.items(), key=lambda kv: (kv[0] != "__micro__", kv[0]))}
    return out
