"""Span boundaries: whole words, never across a sentence or section break (kiwi_cas.core.boundaries)."""

from __future__ import annotations

import random

import pytest

from kiwi_cas.core.boundaries import fix_boundaries, whole_words, within_sentence
from kiwi_cas.core.notes import NoteInput, extract_notes
from kiwi_cas.core.spans import Extraction, Relation, Span
from kiwi_cas.core.splitter import join_wrapped
from tests.conftest import REPO, SHARED_TRAIN, XMI


def _inside_word(text: str, p: int) -> bool:
    return 0 < p < len(text) and text[p - 1].isalnum() and text[p].isalnum()


@pytest.mark.parametrize("text,start,end,want", [
    ("Cholesterol 210 mg/dL", 0, 3, "Cholesterol"),
    ("from 7:00-8:00 today", 5, 12, "7:00-8:00"),
    ("Hgb 13.2 today", 4, 6, "13.2"),
    ("ER-neg tumor", 0, 5, "ER-neg"),
    ("called AT&T twice", 10, 11, "AT&T"),
    ("on 20130118 seen", 3, 7, "20130118"),
])
def test_spans_grow_to_whole_words(text, start, end, want):
    s, e = whole_words(text, start, end)
    assert text[s:e] == want


@pytest.mark.parametrize("text,phrase,want", [
    ("Neck: no lymphadenopathy \nLungs: clear.", "lymphadenopathy \nLungs", "lymphadenopathy"),
    ("HGB 12\nAssessment: stable.", "HGB 12\nAssessment", "HGB 12"),
    ("Chest pain.\n\nNo fever.", "pain.\n\nNo", "pain."),
    ("The patient has chest\npain on exertion.", "chest\npain", "chest\npain"),  # wrapped prose stays one span
])
def test_spans_stop_at_sentence_and_section_breaks(text, phrase, want):
    i = text.index(phrase)
    s, e = within_sentence(text, i, i + len(phrase))
    assert text[s:e] == want


def test_relations_follow_their_fixed_spans():
    text = "Cholesterol 210 today."
    ent, mod = Span(0, 3, "test"), Span(12, 15, "labvalue")
    fixed = fix_boundaries(text, Extraction([ent], [mod], [Relation(ent, mod)]))
    [e], [r] = fixed.entities, fixed.relations
    assert (e.start, e.end) == (0, 11) and r.entity is e


def test_join_wrapped_only_joins_lines_inside_a_sentence():
    text = "Patient has no\nfever today.\nLungs clear.\nAssessment: ok"
    lines = [(0, 14), (15, 27), (28, 40), (41, 55)]
    assert join_wrapped(text, lines) == [(0, 27), (28, 40), (41, 55)]


def _notes() -> list[str]:
    notes = [p.read_text() for p in sorted((REPO / "examples" / "notes").glob("*.txt"))]
    if SHARED_TRAIN.exists():
        notes += [p.read_text() for p in sorted(SHARED_TRAIN.glob("*.txt"))[:24]]
    from kiwi_cas.cas.io import load_xmi

    ctakes = load_xmi(XMI / "ctakesparser-jl" / "mts_sample_note_97_1152.txt.xmi",
                      (XMI / "ctakes-typesystem" / "TypeSystem-ctakes-4.0.x.xml",)).cas.sofa_string
    rng = random.Random(7)
    synthetic = ["".join(rng.choice(["Hgb", "13.2", "7:00-8:00", "AT&T", "ER-neg", "b.i.d.", "mg", "\n", " ", ", ",
                                     "no", "pain", "MEDS:", "tabs", "20130118", ". "]) for _ in range(200))
                 for _ in range(5)]
    return notes + [ctakes] + synthetic


def test_no_predicted_span_starts_or_ends_inside_a_word(bert_extractor):
    """Property over real and synthetic notes: every entity and modifier boundary is a word boundary."""
    texts = _notes()
    for text, ext in zip(texts, extract_notes(bert_extractor, [NoteInput(t) for t in texts])):
        for span in ext.entities + ext.modifiers:
            assert not _inside_word(text, span.start) and not _inside_word(text, span.end), \
                (span, text[max(0, span.start - 10):span.end + 10])
