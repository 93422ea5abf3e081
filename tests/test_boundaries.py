"""Span boundaries: whole words, never across a sentence or section break (kiwi_cas.core.boundaries)."""

from __future__ import annotations

import random

import pytest

from kiwi_cas.core.boundaries import FUNCTION_WORDS, fix_boundaries, whole_words, within_sentence
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


def _fixed(text: str, *phrases: tuple[str, str]) -> list[str]:
    spans = []
    for phrase, label in phrases:
        i = text.index(phrase)
        spans.append(Span(i, i + len(phrase), label))
    return [text[e.start:e.end] for e in fix_boundaries(text, Extraction(spans)).entities]


@pytest.mark.parametrize("text,phrases,want", [
    ("Known mild arthritis with pain.", [("mild arthritis with", "problem")], ["mild arthritis"]),
    ("Ordered an evaluation of the knee.", [("evaluation of the", "test")], ["evaluation"]),
    ("History of a prior prostate biopsy.", [("a", "test"), ("prior prostate biopsy", "test")],
     ["a prior prostate biopsy"]),
    ("History of a prior prostate biopsy.", [("a", "problem"), ("prior prostate biopsy", "test")],
     ["prior prostate biopsy"]),  # another type: the lone "a" is dropped, not joined
    ("Seen for the cystic lesion today.", [("the", "problem")], []),
    ("Took Humulin N daily.", [("Humulin N", "drug")], ["Humulin N"]),  # "N" is not a function word
    ("No fever or chills.", [("fever", "problem"), ("chills", "problem")], ["fever", "chills"]),
])
def test_entities_never_end_in_a_function_word(text, phrases, want):
    assert _fixed(text, *phrases) == want


def test_relations_of_a_joined_or_dropped_entity_follow_it():
    text = "Denies a prior biopsy; the"
    a, biopsy, the, neg = Span(7, 8, "test"), Span(9, 21, "test"), Span(23, 26, "test"), Span(0, 6, "negation")
    fixed = fix_boundaries(text, Extraction([a, biopsy, the], [neg], [Relation(a, neg), Relation(biopsy, neg),
                                                                       Relation(the, neg)]))
    assert [text[e.start:e.end] for e in fixed.entities] == ["a prior biopsy"]
    assert [(text[r.entity.start:r.entity.end], r.modifier) for r in fixed.relations] == [("a prior biopsy", neg)]
    assert fixed.modifiers == [neg]  # modifiers keep their function words ("no evidence of")


def test_the_function_word_rule_can_be_left_out_to_measure_it():
    text = "Known mild arthritis with pain."
    ent = Span(6, 25, "problem")
    assert fix_boundaries(text, Extraction([ent]), function_words=False).entities == [ent]


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
        for span in ext.entities:
            assert text[span.start:span.end].split()[-1].lower() not in FUNCTION_WORDS, span
