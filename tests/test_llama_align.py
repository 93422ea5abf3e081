"""The LLaMA output parser/aligner on adversarial outputs, and constrained decoding's automaton."""

from __future__ import annotations

import pytest

from kiwi_cas.extractors.llama.align import align
from kiwi_cas.extractors.llama.constrained import TagGrammar, advance, finished
from kiwi_cas.extractors.llama.prompts import PromptSet, mark

SRC = "Patient denies chest pain and has  severe Headache."
ENT = {"problem", "test", "drug", "treatment"}


def spans(out, allowed=ENT, src=SRC, **kw):
    a = align(src, out, allowed, **kw)
    for s, e, _ in a.spans:  # the invariant: every span is text at that place in the source
        assert 0 <= s < e <= len(src)
    return [(src[s:e], label) for s, e, label in a.spans], dict(a.dropped)


def test_clean_output():
    got, dropped = spans('Patient denies <span class="problem">chest pain</span> and has  severe '
                         '<span class="problem">Headache</span>.')
    assert got == [("chest pain", "problem"), ("Headache", "problem")] and dropped == {}


def test_altered_whitespace_and_case():
    got, _ = spans('patient DENIES <span class="problem">Chest   pain</span> and has severe '
                   '<span class="problem">headache</span>.')
    assert got == [("chest pain", "problem"), ("Headache", "problem")]


def test_unclosed_and_unopened_tags_are_counted():
    got, dropped = spans('Patient denies <span class="problem">chest pain and has severe headache.</span></span>')
    assert got == [("chest pain and has  severe Headache.", "problem")] or got == []
    assert dropped.get("unopened_close") == 1
    got, dropped = spans('Patient denies <span class="problem">chest pain and has severe headache.')
    assert got == [] and dropped == {"unclosed": 1}


def test_nested_tags_keep_both_layers():
    src = "left knee pain"
    got, _ = spans('<span class="problem"><span class="bodyloc">left knee</span> pain</span>',
                   allowed={"problem", "bodyloc"}, src=src)
    assert got == [("left knee", "bodyloc"), ("left knee pain", "problem")]


def test_invented_class_and_invented_words_are_dropped():
    got, dropped = spans('<span class="symptom">Patient</span> denies <span class="problem">crushing chest pain'
                         '</span> and has severe <span class="problem">migraine</span>.')
    assert got == []
    assert dropped == {"invented_class": 1, "unaligned": 2}


def test_repeated_substring_goes_to_the_right_occurrence():
    src = "No pain in the left arm; pain in the right arm."
    got = align(src, 'No pain in the left arm; <span class="problem">pain</span> in the right arm.', {"problem"})
    assert got.spans == [(25, 29, "problem")]


def test_empty_and_longer_output():
    assert spans("") == ([], {})
    got, dropped = spans('Patient denies <span class="problem">chest pain</span> and has severe headache. '
                         'Also <span class="problem">pancreatitis</span> and <span class="problem">chest pain</span>.')
    assert ("chest pain", "problem") in got and dropped.get("unaligned") == 1
    assert dropped.get("overlap") == 1  # the repeated "chest pain" cannot claim the same text twice


def test_span_may_not_split_a_word():
    got, dropped = spans('Patient denies chest <span class="problem">pai</span>n.', src="Patient denies chest pain.")
    assert got == [] and dropped == {"unaligned": 1}


def test_main_entity_tag_is_ignored_in_re_output():
    got, dropped = spans('No <span class="negation">no</span>', allowed={"negation"}, src="no fever",
                         ignore={"problem"})
    got, dropped = spans('<span class="negation">no</span> <span class="problem">fever</span>',
                         allowed={"negation"}, src="no fever", ignore={"problem"})
    assert got == [("no", "negation")] and dropped == {}


@pytest.mark.parametrize("text,ok", [
    (' Patient denies <span class="problem">chest pain</span>.', True),
    ('Patient denies <span class="problem">chest pain</span>.', True),
    (' Patient denies <span class="problem">chest pain.', False),  # unclosed: no EOS allowed
    (' Patient denies <span class="symptom">chest pain</span>.', None),  # invented class: dead
    (' Patient denies crushing chest pain.', None),  # invented word: dead
    (' Patient denies <span class="problem"><span class="problem">chest</span></span> pain.', None),  # nesting
])
def test_constrained_automaton(text, ok):
    source = " Patient denies chest pain."
    g = TagGrammar(("problem", "test", "drug", "treatment"))
    states = advance({(0, False, ""), (1, False, "")}, text, source, g)
    if ok is None:
        assert not states
    else:
        assert bool(states) and finished(states, source) == ok


def test_kiwi_templates_and_marking():
    p = PromptSet.load()
    assert "### Input Text: Patient has <span class=\"problem\">fever</span> <EOS>" in \
        p.re_prompt("Patient has fever", 12, 17, "problem")
    assert mark("left knee pain", [(0, 14, "problem"), (0, 9, "bodyloc")]) == \
        '<span class="problem"><span class="bodyloc">left knee</span> pain</span>'


def test_kiwi_stop_marker_is_cut():
    from kiwi_cas.extractors.llama.extractor import _cut

    assert _cut('No <span class="problem">fever</span>. <EOS> ### Input Text: more', "<EOS>") == \
        'No <span class="problem">fever</span>. '
