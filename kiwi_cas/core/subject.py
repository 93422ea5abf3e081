"""Who a subject modifier names, in cTAKES's subject vocabulary, and what an entity's linked modifiers
say of it (used by the cTAKES and MedCAT mappings, the flat tables and the viewer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from kiwi_cas.core.spans import Span


def normalise_subject(text: str) -> str:
    """Kiwi subject phrase -> cTAKES subject value."""
    t = text.lower()
    if "donor" in t:
        family = any(w in t for w in ("mother", "father", "sister", "brother", "son", "daughter", "sibling",
                                      "family", "parent", "aunt", "uncle", "cousin"))
        return "donor_family_member" if family else "donor_other"
    if any(w in t for w in ("mother", "father", "sister", "brother", "son", "daughter", "sibling", "family",
                            "parent", "aunt", "uncle", "cousin", "grand", "wife", "husband", "child", "mom", "dad")):
        return "family_member"
    if t.strip() in ("patient", "pt", "pt.", "the patient", "he", "she", "his", "her", "him", "hers", "himself",
                     "herself"):
        return "patient"
    return "other"


@dataclass(frozen=True)
class Assertion:
    """An entity's assertion, from the modifiers linked to it."""

    negated: bool
    uncertain: bool
    conditional: bool
    subjects: tuple[str, ...]  # each subject modifier's cTAKES value, in offset order

    @property
    def subject(self) -> str:
        """The first subject modifier's value; ``patient`` when none is linked."""
        return self.subjects[0] if self.subjects else "patient"

    @property
    def other_subject(self) -> bool:
        return any(s != "patient" for s in self.subjects)


def assertion_of(text: str, modifiers: Iterable[Span]) -> Assertion:
    mods = sorted(modifiers, key=lambda m: (m.start, m.end))
    labels = {m.label for m in mods}
    return Assertion("negation" in labels, "uncertain" in labels, "condition" in labels,
                     tuple(normalise_subject(text[m.start:m.end]) for m in mods if m.label == "subject"))
