"""evaluate's numbers against hand-computed ones."""

import pytest

from kiwi_cas.core.evaluate import evaluate
from kiwi_cas.core.spans import Document, Extraction, Relation, Span

TEXT = "No chest pain or left knee swelling today ."
#       0123456789012345678901234567890123456789012


def test_exact_and_relaxed_by_hand():
    neg = Span(0, 2, "negation")
    pain = Span(3, 13, "problem")  # "chest pain"
    swell = Span(17, 35, "problem")  # "left knee swelling"
    knee = Span(17, 26, "bodyloc")  # "left knee"
    gold = Extraction([pain, swell], [neg, knee], [Relation(pain, neg), Relation(swell, neg), Relation(swell, knee)])
    p_pain = Span(9, 13, "problem")  # "pain": overlaps, not exact
    p_swell = Span(17, 35, "problem")  # exact
    p_today = Span(36, 41, "problem")  # false positive
    p_neg = Span(0, 3, "negation")  # "No " -> trimmed to "No": exact
    pred = Extraction([p_pain, p_swell, p_today], [p_neg],
                      [Relation(p_pain, p_neg), Relation(p_swell, p_neg), Relation(p_today, p_neg)])
    r = evaluate([Document("d", TEXT, gold)], [Document("d", TEXT, pred)])
    ner_exact = r.micro("ner", "exact")
    assert (ner_exact.tp_pred, ner_exact.n_pred, ner_exact.n_gold) == (1, 3, 2)
    assert ner_exact.precision == pytest.approx(1 / 3) and ner_exact.recall == pytest.approx(1 / 2)
    assert ner_exact.f1 == pytest.approx(0.4)
    ner_rel = r.micro("ner", "relaxed")
    assert ner_rel.precision == pytest.approx(2 / 3) and ner_rel.recall == pytest.approx(1.0)
    mod = r.micro("modifier", "exact")
    assert mod.precision == pytest.approx(1.0) and mod.recall == pytest.approx(0.5)
    re_exact = r.micro("re", "exact")
    assert (re_exact.tp_pred, re_exact.n_pred, re_exact.n_gold) == (1, 3, 3)
    re_rel = r.micro("re", "relaxed")
    assert re_rel.tp_pred == 2 and re_rel.tp_gold == 2
    assert r.scores["ner"]["exact"]["problem"].f1 == pytest.approx(0.4)


def test_type_must_match():
    gold = Extraction([Span(0, 4, "drug")])
    pred = Extraction([Span(0, 4, "test")])
    r = evaluate([Document("d", "abcd", gold)], [Document("d", "abcd", pred)])
    assert r.micro("ner", "exact").f1 == 0 and r.micro("ner", "relaxed").f1 == 0
