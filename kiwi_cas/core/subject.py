"""Who a subject modifier names, in cTAKES's subject vocabulary (used by the cTAKES and MedCAT mappings)."""

from __future__ import annotations


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
