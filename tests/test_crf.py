"""The CRF of ``train bert --crf``: its likelihood and its decoding, against brute force over every path."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from kiwi_cas.extractors.bert.crf import TagCRF
from kiwi_cas.extractors.bert.tagging import TagSet, viterbi

TAGS = TagSet(("problem", "test"))  # O, B-problem, I-problem, B-test, I-test


def _path_score(crf: TagCRF, em: torch.Tensor, path: tuple[int, ...]) -> float:
    trans, start = crf.transitions + crf.trans_mask, crf.start + crf.start_mask
    s = start[path[0]] + em[0, path[0]]
    for a, b, t in zip(path, path[1:], range(1, len(path))):
        s = s + trans[a, b] + em[t, b]
    return float(s)


def _crf(seed: int) -> TagCRF:
    torch.manual_seed(seed)
    crf = TagCRF(TAGS)
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start.normal_()
    return crf.requires_grad_(False)


def test_nll_is_minus_log_probability_of_the_gold_path_among_all_paths():
    crf = _crf(0)
    em = torch.randn(2, 7, TAGS.size)
    # row 0 scores positions 1-4 (a head token and [CLS] before, [SEP] and padding after); row 1 positions 1-5
    tags = torch.full((2, 7), -100)
    tags[0, 1:5] = torch.tensor([1, 2, 0, 3])
    tags[1, 1:6] = torch.tensor([0, 3, 4, 4, 1])
    expected = 0.0
    for row, (lo, hi) in enumerate([(1, 5), (1, 6)]):
        e = em[row, lo:hi]
        log_z = torch.logsumexp(torch.tensor([_path_score(crf, e, p)
                                              for p in itertools.product(range(TAGS.size), repeat=hi - lo)]), 0)
        expected += float(log_z) - _path_score(crf, e, tuple(tags[row, lo:hi].tolist()))
    assert abs(float(crf.nll(em, tags)) - expected) < 1e-3


def test_rows_without_scored_positions_add_nothing():
    crf = _crf(1)
    em = torch.randn(2, 4, TAGS.size)
    tags = torch.full((2, 4), -100)
    tags[1, 1:3] = torch.tensor([1, 2])
    assert abs(float(crf.nll(em, tags)) - float(crf.nll(em[1:], tags[1:]))) < 1e-5
    assert float(crf.nll(em[:1], tags[:1])) == 0.0


def test_decoding_with_learned_scores_finds_the_best_valid_path():
    for seed in range(5):
        crf = _crf(seed)
        log_probs = torch.log_softmax(torch.randn(5, TAGS.size), -1)
        learned = crf.export()
        path = viterbi(log_probs.numpy(), TAGS, learned)
        best = max(itertools.product(range(TAGS.size), repeat=5), key=lambda p: _path_score(crf, log_probs, p))
        assert tuple(path) == best
        # and a forbidden step (I-test after O) is never taken, however the learned scores lean
        learned["transitions"][0][4] = 1e6
        path = viterbi(log_probs.numpy(), TAGS, learned)
        assert all(not (a == 0 and b == 4) for a, b in zip(path, path[1:])) and path[0] in (0, 1, 3)
