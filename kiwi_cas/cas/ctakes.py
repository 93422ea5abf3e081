"""Projection of Kiwi findings into the Apache cTAKES typesystem, and cTAKES mentions as input entities.

Mapping (also a table in the README):
- problem -> textsem.DiseaseDisorderMention (typeID 2), or SignSymptomMention (typeID 3) where cTAKES's
  own dictionary lookup put a SignSymptomMention on exactly that span (we follow its semantic group);
- test -> LabMention (typeID 9) when it has a lab value or reference range, else ProcedureMention (typeID 5);
- drug -> MedicationMention (typeID 1); treatment -> ProcedureMention (typeID 5).

The ownership rule (``provenance.py``) holds throughout: a cTAKES mention that already covers
an entity's exact span with a compatible type (subtypes included) is reused and linked
(``ctakesTwin``), never duplicated; its own values (polarity, uncertainty, conditional,
subject, bodyLocation, ...) are kept unless ``--ctakes-assertions fill`` (only unset
features) or ``overwrite`` asks otherwise, and then the values replaced are recorded.
Mentions kiwi_cas creates get every attribute set explicitly (Java reads an unset int as 0,
i.e. "not negated" would read as an invalid polarity): polarity -1/1, uncertainty 1/0,
conditional, generic false, subject, historyOf 0, discoveryTechnique 3, confidence, typeID.
Where cTAKES has a single-valued feature (bodyLocation, severity, course, medicationStrength,
...) and Kiwi found several modifiers, the feature points at the first in text order; every
modifier still gets its own modifier annotation and relation.
"""

from __future__ import annotations

from collections import Counter

from cassis import Cas

from kiwi_cas.cas.provenance import RunRecorder
from kiwi_cas.core.spans import Extraction, Span
from kiwi_cas.core.subject import normalise_subject
from kiwi_cas.errors import InputError

P = "org.apache.ctakes.typesystem.type"
TEXTSEM, RELATION = f"{P}.textsem", f"{P}.relation"
IDENTIFIED = f"{TEXTSEM}.IdentifiedAnnotation"
DISCOVERY_TECHNIQUE = 3  # cTAKES CONST.NE_DISCOVERY_TECH_EXPLICIT_AE
TYPE_IDS = {"DiseaseDisorderMention": 2, "SignSymptomMention": 3, "MedicationMention": 1, "ProcedureMention": 5,
            "LabMention": 9, "AnatomicalSiteMention": 6}
ASSERTION_MODES = ("keep", "fill", "overwrite")

#: cTAKES mention type -> Kiwi entity label, for --entities-from ctakes (subtypes count as their supertype)
CTAKES_TO_KIWI = {"DiseaseDisorderMention": "problem", "SignSymptomMention": "problem", "MedicationMention": "drug",
                  "ProcedureMention": "treatment", "LabMention": "test"}
#: cTAKES CONST.NE_TYPE_ID_* -> Kiwi entity label, for generic mentions (YTEX's EntityMention, drug NER's events)
TYPE_ID_TO_KIWI = {1: "drug", 2: "problem", 3: "problem", 5: "treatment", 9: "test"}
#: Kiwi entity label -> cTAKES mention types a Kiwi entity may reuse, in order of preference
REUSABLE = {"problem": ("DiseaseDisorderMention", "SignSymptomMention"), "test": ("LabMention", "ProcedureMention"),
            "drug": ("MedicationMention",), "treatment": ("ProcedureMention",)}

# modifier label -> (cTAKES modifier type, feature on the mention, relation type)
MODIFIER_MAP: dict[str, tuple[str, str | None, str | None]] = {
    "negation": ("PolarityModifier", None, None),
    "uncertain": ("UncertaintyModifier", None, None),
    "condition": ("ConditionalModifier", None, None),
    "subject": ("SubjectModifier", None, None),
    "severity": ("SeverityModifier", "severity", "DegreeOfTextRelation"),
    "course": ("CourseModifier", "course", "DegreeOfTextRelation"),
    "bodyloc": ("AnatomicalSiteMention", "bodyLocation", "LocationOfTextRelation"),
    "labvalue": ("LabValueModifier", "labValue", "ResultOfTextRelation"),
    "reference_range": ("LabReferenceRangeModifier", "referenceRangeNarrative", None),
    "temporal": ("TimeMention", "relativeTemporalContext", "TemporalTextRelation"),
    "strength": ("MedicationStrengthModifier", "medicationStrength", None),
    "dosage": ("MedicationDosageModifier", "medicationDosage", None),
    "duration": ("MedicationDurationModifier", "medicationDuration", None),
    "form": ("MedicationFormModifier", "medicationForm", None),
    "frequency": ("MedicationFrequencyModifier", "medicationFrequency", None),
    "route": ("MedicationRouteModifier", "medicationRoute", None),
}
RELATION_CATEGORY = {"DegreeOfTextRelation": "degree_of", "LocationOfTextRelation": "location_of",
                     "ResultOfTextRelation": "result_of", "TemporalTextRelation": "overlap"}


class CtakesTypesMissing(InputError, code="ctakes_types_missing"):
    """--ctakes without the cTAKES typesystem."""


def require_ctakes(view: Cas) -> None:
    if not view.typesystem.contains_type(f"{TEXTSEM}.DiseaseDisorderMention"):
        raise CtakesTypesMissing("--ctakes needs the cTAKES typesystem (pass --typesystem with cTAKES's "
                                 "TypeSystem.xml, or annotate cTAKES output)")


def _identified(cls, span: Span, type_id: int, **extra):
    fs = cls(begin=span.start, end=span.end, id=0, typeID=type_id, discoveryTechnique=DISCOVERY_TECHNIQUE,
             confidence=round(float(span.confidence), 4), polarity=1, uncertainty=0, conditional=False,
             generic=False, subject="patient", historyOf=0)
    for k, v in extra.items():
        setattr(fs, k, v)
    return fs


def _mention_type(view: Cas, fs) -> str | None:
    """The Kiwi entity label of a cTAKES mention (by inheritance, else by typeID), or None."""
    ts = view.typesystem
    for short, label in CTAKES_TO_KIWI.items():
        name = f"{TEXTSEM}.{short}"
        if ts.contains_type(name) and ts.is_instance_of(fs.type.name, name):
            return label
    anatomy = f"{TEXTSEM}.AnatomicalSiteMention"
    if ts.contains_type(anatomy) and ts.is_instance_of(fs.type.name, anatomy):
        return None
    type_id = fs.get("typeID") if fs.type.get_feature("typeID") else None
    return TYPE_ID_TO_KIWI.get(type_id)


def _same_span_of_type(view: Cas, short: str) -> dict[tuple[int, int], object]:
    """Existing annotations of a cTAKES type (subtypes included) by exact span; the first in the index wins."""
    name = f"{TEXTSEM}.{short}"
    found: dict[tuple[int, int], object] = {}
    if view.typesystem.contains_type(name):
        for fs in view.select(name):
            found.setdefault((fs.begin, fs.end), fs)
    return found


def project(view: Cas, ext: Extraction, recorder: RunRecorder, assertions: str = "keep",
            given: dict[tuple[int, int, str], object] | None = None) -> dict:
    """Write ``ext`` into cTAKES types under the ownership rule.

    ``given`` maps Kiwi entity keys to the cTAKES mentions they were read from
    (``--entities-from ctakes``). Returns the cTAKES annotation behind each Kiwi span,
    created or reused, by ("e"|"m", span key), for the Kiwi ``ctakesTwin`` links.
    """
    require_ctakes(view)
    ts = view.typesystem
    text = view.sofa_string or ""
    twins: dict = {}
    get = lambda short: ts.get_type(f"{TEXTSEM}.{short}")  # noqa: E731
    existing = {short: _same_span_of_type(view, short)
                for short in {s for shorts in REUSABLE.values() for s in shorts} | {m[0] for m in MODIFIER_MAP.values()}}
    mods_of: dict[tuple, list] = {}
    for r in ext.relations:
        mods_of.setdefault(r.entity.key(), []).append(r.modifier)
    mention_of: dict[tuple, object] = {}
    for ent in sorted(ext.entities, key=lambda s: (s.start, s.end)):
        mods = sorted(mods_of.get(ent.key(), []), key=lambda s: (s.start, s.end))
        labels = {m.label for m in mods}
        mention = (given or {}).get(ent.key()) or next(
            (existing[s][(ent.start, ent.end)] for s in REUSABLE[ent.label] if (ent.start, ent.end) in existing[s]),
            None)
        if mention is None:
            if ent.label == "problem":
                short = "SignSymptomMention" if (ent.start, ent.end) in existing["SignSymptomMention"] \
                    else "DiseaseDisorderMention"
            elif ent.label == "test":
                short = "LabMention" if labels & {"labvalue", "reference_range"} else "ProcedureMention"
            elif ent.label == "drug":
                short = "MedicationMention"
            else:
                short = "ProcedureMention"
            mention = _identified(get(short), ent, TYPE_IDS[short])
            recorder.add(mention)
        subj = next((m for m in mods if m.label == "subject"), None)
        for feature, value in (("polarity", -1 if "negation" in labels else 1),
                               ("uncertainty", 1 if "uncertain" in labels else 0),
                               ("conditional", "condition" in labels),
                               ("subject", normalise_subject(text[subj.start:subj.end]) if subj else "patient")):
            recorder.set(mention, feature, value, assertions)
        mention_of[ent.key()] = mention
        twins[("e", ent.key())] = mention
    made: dict[tuple, object] = {}
    linked: set[tuple[int, str]] = set()
    for ent_key, mention in mention_of.items():
        for mod in sorted(mods_of.get(ent_key, []), key=lambda s: (s.start, s.end)):
            short, feature, rel_short = MODIFIER_MAP[mod.label]
            fs = made.get(mod.key()) or existing[short].get((mod.start, mod.end))
            if fs is None:
                fs = _modifier(get(short), mod, text)
                if ts.is_instance_of(fs.type.name, f"{TEXTSEM}.Modifier"):
                    fs.category = mod.label
                recorder.add(fs)
            made[mod.key()] = fs
            twins[("m", mod.key())] = fs
            target = fs
            if rel_short is not None:
                target = _relation(view, recorder, rel_short, mention, fs, mod.confidence)
            if feature and (id(mention), feature) not in linked:  # single-valued: the first in text order
                linked.add((id(mention), feature))
                recorder.set(mention, feature, target, assertions)
    return twins


def _modifier(cls, mod: Span, text: str):
    extra = {}
    short = cls.name.rsplit(".", 1)[-1]
    if short == "PolarityModifier":
        extra["polarity"] = -1
    fs = _identified(cls, mod, TYPE_IDS.get(short, 0), **extra)
    if short == "UncertaintyModifier":
        fs.uncertainty = 1
    if short == "ConditionalModifier":
        fs.conditional = True
    if short == "SubjectModifier":
        fs.subject = normalise_subject(text[mod.start:mod.end])
    return fs


def _relation(view: Cas, recorder: RunRecorder, short: str, arg1, arg2, confidence: float):
    ts = view.typesystem
    arg_t = ts.get_type(f"{RELATION}.RelationArgument")
    a1, a2 = arg_t(argument=arg1, role="Argument", id=0), arg_t(argument=arg2, role="Related_to", id=0)
    rel = ts.get_type(f"{RELATION}.{short}")(arg1=a1, arg2=a2, category=RELATION_CATEGORY[short], id=0,
                                             discoveryTechnique=DISCOVERY_TECHNIQUE,
                                             confidence=round(float(confidence), 4), polarity=1, uncertainty=0,
                                             conditional=False)
    recorder.add(a1)
    recorder.add(a2)
    recorder.add(rel)
    return rel


def remove_projections(view: Cas, twins: list) -> None:
    """Remove projected cTAKES annotations with the relations (and their arguments) that point at them."""
    for twin in twins:
        _remove_projection(view, twin)


def _remove_projection(view: Cas, twin) -> None:
    rel_top = f"{RELATION}.BinaryTextRelation"
    if view.typesystem.contains_type(rel_top):
        for rel in list(view.select(rel_top)):
            args = [rel.get("arg1"), rel.get("arg2")]
            if any(a is not None and a.get("argument") is twin for a in args):
                for a in args:
                    if a is not None:
                        _remove_quiet(view, a)
                view.remove(rel)
    _remove_quiet(view, twin)


def _remove_quiet(view: Cas, fs) -> None:
    try:
        view.remove(fs)
    except ValueError:
        pass  # not indexed


def ctakes_entities(view: Cas) -> tuple[list[Span], dict[tuple[int, int, str], object], Counter]:
    """cTAKES mentions of the CAS as Kiwi entity spans, the mention behind each span, and the cTAKES
    annotation types seen that gave no entity (for a warning when nothing was usable).

    A subtype of a mapped cTAKES type counts as that type (DeepPhe's cancer types, say); a generic
    mention (YTEX's EntityMention, drug NER's MedicationEventMention) counts by its cTAKES typeID.
    """
    spans: list[Span] = []
    by_key: dict[tuple[int, int, str], object] = {}
    unused: Counter = Counter()
    if not view.typesystem.contains_type(IDENTIFIED):
        return spans, by_key, unused
    for m in sorted(view.select(IDENTIFIED), key=lambda fs: (fs.begin, fs.end)):
        label = _mention_type(view, m)
        if label is None:
            unused[m.type.name] += 1
            continue
        span = Span(m.begin, m.end, label, 1.0)
        if span.key() not in by_key:
            spans.append(span)
            by_key[span.key()] = m
    return spans, by_key, unused
