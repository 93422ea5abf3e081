"""Sentence offsets for a CAS view: the producer's sentences if present, else the built-in splitter.

cTAKES (and DKPro) sentences are used, joined where the producer split a sentence at a hard
line break (``join_wrapped``): on hard-wrapped notes cTAKES ends a sentence at every line end,
which cuts negation cues off their findings (measured in ``benchmarks/ctakes_sentences.py``:
RE end to end 0.56 with cTAKES's sentences as given, 0.65 joined, on hard-wrapped dev notes). ``--sentence-type NAME``
uses that type exactly as given; ``--sentence-type builtin`` ignores the CAS's sentences.
"""

from __future__ import annotations

from cassis import Cas

from kiwi_cas.core.splitter import join_wrapped, split_sentences
from kiwi_cas.errors import UsageError

KNOWN_SENTENCE_TYPES: tuple[str, ...] = (
    "org.apache.ctakes.typesystem.type.textspan.Sentence",
    "de.tudarmstadt.ukp.dkpro.core.api.segmentation.type.Sentence",
)
KIWI_SENTENCE_TYPE = "org.clinicalnlp.kiwi.type.Sentence"
BUILTIN = "builtin"


def cas_sentences(view: Cas, sentence_type: str | None = None) -> tuple[list[tuple[int, int]], str]:
    """(sentence offsets in code points, where they came from).

    An explicit ``sentence_type`` must exist in the typesystem and is used as given; known
    producer types are used (joined at wrapped lines) when the CAS holds at least one of
    them; otherwise, or with ``sentence_type="builtin"``, the built-in clinical splitter.
    """
    text = view.sofa_string or ""
    if sentence_type == BUILTIN:
        return split_sentences(text), BUILTIN
    candidates = (sentence_type,) if sentence_type else KNOWN_SENTENCE_TYPES
    ts = view.typesystem
    for name in candidates:
        if not ts.contains_type(name):
            if sentence_type:
                raise UsageError(f"--sentence-type {name}: no such type in the typesystem of the input")
            continue
        found = sorted({(s.begin, s.end) for s in view.select(name) if s.end > s.begin})
        if found:
            return (found if sentence_type else join_wrapped(text, found)), name
    return split_sentences(text), BUILTIN
