"""Kiwi annotations in a CAS: write an Extraction, read one back, remove earlier ones.

Every new feature structure is ``cas.add``-ed, relations included, so that cassis writes
a sofa reference and converts offsets to UTF-16 (dkpro-cassis issue #262).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cassis import Cas

from kiwi_cas.cas.provenance import is_kiwi
from kiwi_cas.cas.sentences import KIWI_SENTENCE_TYPE
from kiwi_cas.core import schema
from kiwi_cas.core.spans import Counts, Extraction, Relation, Span


@dataclass
class Written:
    """What :func:`write_kiwi` added: its counts, and the feature structure behind each span."""

    counts: Counts
    fs_of: dict = field(default_factory=dict)  # ("e"|"m", span key) -> feature structure


def remove_kiwi(view: Cas, keep_entities: bool = False) -> list:
    """Remove Kiwi annotations written by an earlier run (so a re-run replaces, never duplicates).

    Returns the cTAKES twins the removed annotations pointed at, for the cTAKES module to remove.
    """
    twins = []
    for fs in list(view.select_all_fs()):
        if not is_kiwi(fs):
            continue
        twin = fs.get("ctakesTwin") if fs.type.get_feature("ctakesTwin") else None
        if twin is not None:
            twins.append(twin)
        if keep_entities and view.typesystem.is_instance_of(fs.type.name, schema.ENTITY_SUPERTYPE):
            fs.ctakesTwin = None  # kept, but its twin goes with the previous run
            continue
        view.remove(fs)
    return twins


def read_kiwi(view: Cas) -> Extraction:
    """The Kiwi entities, modifiers and relations of a view, as plain spans (code points)."""
    ts = view.typesystem
    ext = Extraction()
    by_id: dict[int, Span] = {}
    if not ts.contains_type(schema.ENTITY_SUPERTYPE):
        return ext
    for fs in view.select_all_fs():
        name = fs.type.name
        label = schema.TYPE_TO_LABEL.get(name)
        if label is None:
            continue
        conf = fs.get("confidence")
        span = Span(fs.begin, fs.end, label, 1.0 if conf is None else float(conf))
        by_id[fs.xmiID] = span
        (ext.entities if schema.is_entity(label) else ext.modifiers).append(span)
    for fs in view.select(schema.RELATION_TYPE):
        ent, mod = fs.get("entity"), fs.get("modifier")
        if ent is None or mod is None or ent.xmiID not in by_id or mod.xmiID not in by_id:
            continue
        conf = fs.get("confidence")
        ext.relations.append(Relation(by_id[ent.xmiID], by_id[mod.xmiID], 1.0 if conf is None else float(conf)))
    ext.entities.sort(key=lambda s: (s.start, s.end))
    ext.modifiers.sort(key=lambda s: (s.start, s.end))
    return ext


def write_kiwi(view: Cas, ext: Extraction, extractor_name: str, write_entities: bool = True) -> Written:
    """Add the extraction to the view; with ``write_entities=False`` the entities already exist."""
    ts = view.typesystem
    counts = Counts(documents=1, unaligned=ext.unaligned.copy())
    fs_of: dict[tuple[str, tuple[int, int, str]], object] = {}
    if not write_entities:
        for fs in view.select(schema.ENTITY_SUPERTYPE):
            fs_of[("e", (fs.begin, fs.end, schema.TYPE_TO_LABEL.get(fs.type.name, "")))] = fs

    def make(span: Span, role: str):
        key = (role, span.key())
        if key in fs_of:
            return fs_of[key]
        cls = ts.get_type(schema.LABEL_TO_TYPE[span.label])
        fs = cls(begin=span.start, end=span.end, confidence=round(float(span.confidence), 4),
                 extractor=extractor_name, label=span.label)
        view.add(fs)
        fs_of[key] = fs
        return fs

    if write_entities:
        for span in sorted(ext.entities, key=lambda s: (s.start, s.end)):
            make(span, "e")
            counts.entities += 1
    for span in sorted(ext.modifiers, key=lambda s: (s.start, s.end)):
        make(span, "m")
        counts.modifiers += 1
    rel_type = ts.get_type(schema.RELATION_TYPE)
    for rel in ext.relations:
        ent = fs_of.get(("e", rel.entity.key()))
        mod = fs_of.get(("m", rel.modifier.key()))
        if ent is None or mod is None:
            continue
        view.add(rel_type(entity=ent, modifier=mod, category=rel.category,
                          confidence=round(float(rel.confidence), 4), extractor=extractor_name))
        counts.relations += 1
    return Written(counts, fs_of)


def write_sentences(view: Cas, sentences: list[tuple[int, int]]) -> None:
    cls = view.typesystem.get_type(KIWI_SENTENCE_TYPE)
    for s, e in sentences:
        view.add(cls(begin=s, end=e))
