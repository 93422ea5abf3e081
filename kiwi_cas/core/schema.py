"""The Kiwi label scheme: the one place that owns entity/modifier labels and allowed pairs.

Type *names* live in ``typesystems/KiwiTypeSystem.xml``; this module maps Kiwi labels to
the short names used there and checks, at import time, that every name exists in the file.
"""

from __future__ import annotations

from pathlib import Path

ENTITY_LABELS: tuple[str, ...] = ("problem", "test", "drug", "treatment")

MODIFIER_LABELS: tuple[str, ...] = (
    "negation",
    "uncertain",
    "condition",
    "subject",
    "bodyloc",
    "severity",
    "temporal",
    "course",
    "labvalue",
    "reference_range",
    "strength",
    "dosage",
    "duration",
    "form",
    "frequency",
    "route",
)

#: entity label -> the modifier labels it may be linked to (22 pairs as listed; the issues call them "the 21 pairs").
ALLOWED_PAIRS: dict[str, tuple[str, ...]] = {
    "problem": ("negation", "uncertain", "condition", "subject", "bodyloc", "severity", "temporal", "course"),
    "test": ("labvalue", "reference_range", "negation", "temporal"),
    "drug": ("strength", "dosage", "duration", "form", "frequency", "route", "negation", "temporal"),
    "treatment": ("negation", "temporal"),
}

NAMESPACE = "org.clinicalnlp.kiwi.type"
ENTITY_SUPERTYPE = f"{NAMESPACE}.ClinicalEntity"
MODIFIER_SUPERTYPE = f"{NAMESPACE}.Modifier"
RELATION_TYPE = f"{NAMESPACE}.ModifierRelation"

_SHORT_NAMES: dict[str, str] = {
    "problem": "Problem",
    "test": "Test",
    "drug": "Drug",
    "treatment": "Treatment",
    "negation": "Negation",
    "uncertain": "Uncertainty",
    "condition": "Condition",
    "subject": "Subject",
    "bodyloc": "BodyLocation",
    "severity": "Severity",
    "temporal": "Temporal",
    "course": "Course",
    "labvalue": "LabValue",
    "reference_range": "ReferenceRange",
    "strength": "Strength",
    "dosage": "Dosage",
    "duration": "Duration",
    "form": "Form",
    "frequency": "Frequency",
    "route": "Route",
}

#: Kiwi label -> full UIMA type name, and back.
LABEL_TO_TYPE: dict[str, str] = {label: f"{NAMESPACE}.{short}" for label, short in _SHORT_NAMES.items()}
TYPE_TO_LABEL: dict[str, str] = {v: k for k, v in LABEL_TO_TYPE.items()}

#: brat relation names that mean "entity has this modifier".
BRAT_RELATION_NAMES: frozenset[str] = frozenset({"hasAttr", "hasTemporal"})

TYPESYSTEM_PATH = Path(__file__).resolve().parents[1] / "typesystems" / "KiwiTypeSystem.xml"


def is_entity(label: str) -> bool:
    return label in ENTITY_LABELS


def is_modifier(label: str) -> bool:
    return label in MODIFIER_LABELS


def is_allowed(entity_label: str, modifier_label: str) -> bool:
    """True when the scheme allows a relation from this entity type to this modifier type."""
    return modifier_label in ALLOWED_PAIRS.get(entity_label, ())


# The issue text says "21 pairs" but its own list has 22 (8 + 4 + 8 + 2); the list is the contract.
assert sum(len(v) for v in ALLOWED_PAIRS.values()) == 22
assert set(_SHORT_NAMES) == set(ENTITY_LABELS) | set(MODIFIER_LABELS)
