"""The LLaMA output parser/aligner on adversarial outputs, and constrained decoding's automaton."""

from __future__ import annotations

import pytest

from kiwi_cas.extractors.llama.align import align
from kiwi_cas.extractors.llama.constrained import TagGrammar, advance, finished, start_states
from kiwi_cas.extractors.llama.prompts import PromptSet, mark
from tests.tag_language import SETTINGS, SOURCE

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
    states = advance(start_states(source), text, source, g)
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


# the joint (one-pass) format: entity tags carry their modifiers as attributes
JOINT = {"problem": ("negation", "bodyloc", "severity"), "drug": ("dosage",), "test": (), "treatment": ()}


@pytest.mark.parametrize("text,ok", [
    (' Patient denies <span class="problem" negation="denies" bodyloc="chest">chest pain</span>.', True),
    (' Patient denies <span class="problem">chest pain</span>.', True),
    (' Patient denies <span class="problem" negation="denies">chest pain.', False),  # unclosed
    (' Patient denies <span class="problem" dosage="denies">chest pain</span>.', None),  # a drug's modifier
    (' Patient denies <span class="test" negation="denies">chest pain</span>.', None),  # test offers none here
    (' Patient denies <span class="problem" negation="den"ies">chest pain</span>.', None),  # a quote in a value
    (' Patient denies <span class="problem" negation=denies>chest pain</span>.', None),  # unquoted
    (' Patient denies <span class="problem"' + ' negation="x"' * 9 + '>chest pain</span>.', None),  # 9 attributes
    (' Patient denies <span class="problem" negation="' + "x" * 61 + '">chest pain</span>.', None),  # too long
])
def test_joint_automaton(text, ok):
    source = " Patient denies chest pain."
    g = TagGrammar(("problem", "test", "drug", "treatment"), JOINT)
    states = advance(start_states(source), text, source, g)
    if ok is None:
        assert not states
    else:
        assert bool(states) and finished(states, source) == ok


def test_joint_draft_guesses_the_end_of_a_tag_after_a_value():
    from kiwi_cas.extractors.llama.constrained import TagFollower

    g = TagGrammar(("problem",), JOINT)
    f = TagFollower(None, " No pain.", g, eos_id=0, constrained=True)
    f.states = advance(f.states, ' No <span class="problem" negation="No"', f.source, g)
    assert f.draft().startswith('>pain.')


def test_joint_output_links_each_modifier_at_the_occurrence_nearest_its_entity():
    src = "No fever, no chest pain today."
    out = (' No <span class="problem" negation="no">fever</span>, no <span class="problem" negation="NO" '
           'bodyloc="chest" severity="crushing">chest pain</span> today.')
    a = align(src, out, ENT, attributes=JOINT)
    links = {(src[e[0]:e[1]], src[m[0]:m[1]], m[2], m[0]) for e, m in a.links}
    assert links == {("fever", "No", "negation", 0), ("chest pain", "no", "negation", 10),
                     ("chest pain", "chest", "bodyloc", 13)}
    assert dict(a.dropped) == {"unaligned": 1}  # "crushing" is not in the text


def test_joint_format_round_trips_the_gold_annotations(tmp_path):
    """Gold -> joint training target -> aligner gives the gold entities, modifiers and relations back."""
    from kiwi_cas.core import schema
    from kiwi_cas.core.spans import Document, Extraction, Relation, Span
    from kiwi_cas.core.splitter import split_sentences
    from kiwi_cas.extractors.llama.train import joint_pairs

    text = "She denies severe chest pain. Aspirin 81 mg daily was started; no fever."
    pain, asp, fever = Span(18, 28, "problem"), Span(30, 37, "drug"), Span(66, 71, "problem")
    mods = [Span(4, 10, "negation"), Span(11, 17, "severity"), Span(18, 23, "bodyloc"), Span(38, 43, "strength"),
            Span(44, 49, "frequency"), Span(63, 65, "negation")]
    rels = [Relation(pain, m) for m in mods[:3]] + [Relation(asp, m) for m in mods[3:5]] + [Relation(fever, mods[5])]
    doc = Document("d", text, Extraction([pain, asp, fever], mods, rels))
    got_ents, got_rels = set(), set()
    prompts = PromptSet(ner="{}", re={}, joint="{}")
    for (s, e), (_, target) in zip(split_sentences(text), joint_pairs([doc], prompts)):
        a = align(text[s:e], target, set(schema.ENTITY_LABELS), attributes=schema.ALLOWED_PAIRS)
        got_ents |= {(x + s, y + s, label) for x, y, label in a.spans}
        got_rels |= {((x + s, y + s, l), (p + s, q + s, m)) for (x, y, l), (p, q, m) in a.links}
        assert not a.dropped
    assert got_ents == {x.key() for x in doc.annotations.entities}
    assert got_rels == {(r.entity.key(), r.modifier.key()) for r in rels}


@pytest.mark.parametrize("text,ok", [
    (' Patient denies <span class="problem" negation="denies">chest pain</span>.', True),
    (' Patient denies <span class="problem">chest pain</span>.', True),
    ('Patient denies <span class="problem">chest pain</span>.', True),
    (' Patient denies chest pain.', None),  # the given entity left untagged
    (' Patient denies <span class="test">chest pain</span>.', None),  # another label
    (' Patient denies <span class="problem">chest</span> pain.', None),  # another end
    (' <span class="problem">Patient</span> denies <span class="problem">chest pain</span>.', None),  # an extra tag
])
def test_joint_automaton_with_given_entities_tags_exactly_those(text, ok):
    source = " Patient denies chest pain."
    g = TagGrammar(("problem", "test", "drug", "treatment"), JOINT, forced=((16, 26, "problem"),))
    states = advance(start_states(source), text, source, g)
    if ok is None:
        assert not states
    else:
        assert bool(states) and finished(states, source) == ok


@pytest.mark.parametrize("labels,attributes,forced,cases", [s[1:] for s in SETTINGS], ids=[s[0] for s in SETTINGS])
def test_the_automaton_admits_what_the_vllm_grammar_admits(labels, attributes, forced, cases):
    """The same list tests/test_vllm_cpu.py checks the vLLM grammar against with xgrammar."""
    g = TagGrammar(labels, attributes, forced)
    got = [bool(states) and finished(states, SOURCE)
           for states in (advance(start_states(SOURCE), text, SOURCE, g) for text, _ in cases)]
    assert got == [ok for _, ok in cases]
