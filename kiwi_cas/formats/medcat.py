"""MedCAT-shaped JSON: per-document output as MedCAT's ``get_entities`` returns it, and a
MedCATtrainer-style project export for review. Offsets are character offsets into the note.

Kiwi does no concept normalisation, so ``cui`` is ``kiwi:<label>`` and ``type_ids`` is the
Kiwi label. Meta-annotations come from the modifiers related to each entity:
- Presence: ``False`` with a negation, ``Hypothetical (N/A)`` with uncertainty or a
  condition, else ``True``;
- Subject/Experiencer: ``Patient`` unless a subject modifier names family (``Family``) or
  someone else (``Other``);
- Time (only where a temporal modifier exists): ``Past`` / ``Future`` from keywords in the
  temporal phrase ("history", "ago", "prior", a year ... / "next", "tomorrow", "follow"),
  else ``Recent``.
"""

from __future__ import annotations

import datetime as _dt
import re

from kiwi_cas.core.subject import normalise_subject
from kiwi_cas.core.spans import Document, Span

_PAST = re.compile(r"\b(history|ago|prior|previous|previously|past|last|former|(19|20)\d\d|since|s/p|status post)\b", re.I)
_FUTURE = re.compile(r"\b(next|tomorrow|will|follow[- ]?up|upcoming|scheduled|in \d+ (days?|weeks?|months?))\b", re.I)


def _meta(doc: Document, entity: Span) -> dict[str, dict]:
    mods = [r for r in doc.annotations.relations if r.entity.key() == entity.key()]
    by = {}
    for r in mods:
        by.setdefault(r.category, r)
    meta: dict[str, dict] = {}
    if "negation" in by:
        meta["Presence"] = {"value": "False", "confidence": by["negation"].confidence}
    elif "uncertain" in by or "condition" in by:
        r = by.get("uncertain") or by["condition"]
        meta["Presence"] = {"value": "Hypothetical (N/A)", "confidence": r.confidence}
    else:
        meta["Presence"] = {"value": "True", "confidence": entity.confidence}
    if "subject" in by:
        r = by["subject"]
        subj = normalise_subject(doc.text[r.modifier.start:r.modifier.end])
        value = {"patient": "Patient", "family_member": "Family", "donor_family_member": "Family"}.get(subj, "Other")
        meta["Subject/Experiencer"] = {"value": value, "confidence": r.confidence}
    else:
        meta["Subject/Experiencer"] = {"value": "Patient", "confidence": entity.confidence}
    if "temporal" in by:
        r = by["temporal"]
        phrase = doc.text[r.modifier.start:r.modifier.end]
        value = "Past" if _PAST.search(phrase) else "Future" if _FUTURE.search(phrase) else "Recent"
        meta["Time"] = {"value": value, "confidence": r.confidence}
    for name, m in meta.items():
        m["name"] = name
        m["confidence"] = round(float(m["confidence"]), 4)
    return meta


def medcat_document(doc: Document) -> dict:
    """``{"entities": {id: {...}}, "tokens": []}`` as MedCAT v2's ``CAT.get_entities`` returns for one text.

    ``pretty_name`` is the concept's name (the Kiwi label: Kiwi does no concept linking), the
    note's words are in ``source_value`` / ``detected_name``; the context lists are present
    and empty, as MedCAT gives them by default.
    """
    entities = {}
    for i, e in enumerate(sorted(doc.annotations.entities, key=lambda s: (s.start, s.end))):
        value = doc.text[e.start:e.end]
        entities[i] = {
            "pretty_name": e.label, "cui": f"kiwi:{e.label}", "type_ids": [e.label],
            "source_value": value, "detected_name": value.lower().replace(" ", "~"),
            "acc": round(float(e.confidence), 4), "context_similarity": round(float(e.confidence), 4),
            "start": e.start, "end": e.end, "id": i, "meta_anns": _meta(doc, e),
            "context_left": [], "context_center": [], "context_right": [],
        }
    return {"entities": entities, "tokens": []}


def medcattrainer_export(docs: list[Document], project: str = "kiwi_cas", validated: bool = False) -> dict:
    """A MedCATtrainer-style project export: entities and modifiers as annotations, relations between them.

    Shaped for MedCAT's own trainers: ``meta_anns`` is a dict keyed by task name (as
    MedCATtrainer writes it, and as MedCAT's supervised training and MetaCAT read it); each
    document lists its entities before its modifiers, because MedCAT takes the meta-annotation
    task names from the first annotation of the first document and modifiers carry none.
    ``validated`` marks annotations, meta-annotations and relations as reviewed: MetaCAT and
    RelCAT read only validated items, so without it nothing is trained until a reviewer
    validates the project in MedCATtrainer.
    """
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    out_docs = []
    for d_id, doc in enumerate(docs):
        order = lambda s: (s.start, -s.end, s.label)  # noqa: E731  (outer spans before the spans nested in them)
        entities = sorted(set(doc.annotations.entities), key=order)
        modifiers = sorted((m for m in set(doc.annotations.modifiers)), key=order)
        ids = {}
        anns = []
        for is_entity, s in [(True, e) for e in entities] + [(False, m) for m in modifiers]:
            a_id = len(anns)
            ids[(s.key(), is_entity)] = a_id
            meta = _meta(doc, s) if is_entity else {}
            anns.append({
                "id": a_id, "user": "kiwi_cas", "cui": f"kiwi:{s.label}", "value": doc.text[s.start:s.end],
                "start": s.start, "end": s.end, "validated": validated, "correct": True, "deleted": False,
                "alternative": False, "killed": False, "irrelevant": False, "manually_created": False,
                "acc": round(float(s.confidence), 4), "last_modified": now,
                "meta_anns": {k: {"name": k, "value": v["value"], "acc": v["confidence"], "validated": validated}
                              for k, v in meta.items()},
            })
        rels = []
        for r in doc.annotations.relations:
            a = ids.get((r.entity.key(), True))
            b = ids.get((r.modifier.key(), False))
            if a is None or b is None:
                continue
            rels.append({
                "start_entity": a, "start_entity_cui": f"kiwi:{r.entity.label}",
                "start_entity_value": doc.text[r.entity.start:r.entity.end],
                "start_entity_start_idx": r.entity.start, "start_entity_end_idx": r.entity.end,
                "end_entity": b, "end_entity_cui": f"kiwi:{r.modifier.label}",
                "end_entity_value": doc.text[r.modifier.start:r.modifier.end],
                "end_entity_start_idx": r.modifier.start, "end_entity_end_idx": r.modifier.end,
                "relation": r.category, "user": "kiwi_cas", "validated": validated,
                "confidence": round(r.confidence, 4),
            })
        out_docs.append({"id": d_id, "name": doc.name, "text": doc.text, "last_modified": now,
                         "annotations": anns, "relations": rels})
    return {"projects": [{"name": project, "id": 0, "cuis": "", "tuis": "", "documents": out_docs}]}
