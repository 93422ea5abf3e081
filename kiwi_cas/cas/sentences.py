"""Sentence offsets for a CAS view: the producer's sentences if present, else the built-in splitter."""

from __future__ import annotations

from cassis import Cas

from kiwi_cas.core.splitter import split_sentences
from kiwi_cas.errors import UsageError

KNOWN_SENTENCE_TYPES: tuple[str, ...] = (
    "org.apache.ctakes.typesystem.type.textspan.Sentence",
    "de.tudarmstadt.ukp.dkpro.core.api.segmentation.type.Sentence",
)
KIWI_SENTENCE_TYPE = "org.clinicalnlp.kiwi.type.Sentence"


def cas_sentences(view: Cas, sentence_type: str | None = None) -> tuple[list[tuple[int, int]], str]:
    """(sentence offsets in code points, where they came from).

    An explicit ``sentence_type`` must exist in the typesystem; known producer types are
    used when the CAS holds at least one of them; otherwise the built-in clinical splitter.
    """
    text = view.sofa_string or ""
    candidates = (sentence_type,) if sentence_type else KNOWN_SENTENCE_TYPES
    ts = view.typesystem
    for name in candidates:
        if not ts.contains_type(name):
            if sentence_type:
                raise UsageError(f"--sentence-type {name}: no such type in the typesystem of the input")
            continue
        found = sorted({(s.begin, s.end) for s in view.select(name) if s.end > s.begin})
        if found:
            return found, name
    return split_sentences(text), "builtin"
