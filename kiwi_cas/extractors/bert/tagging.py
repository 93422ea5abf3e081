"""BIO tag sets, token alignment of character spans, and constrained (Viterbi) decoding.

Two independent tag layers are used because modifiers nest inside entities
("left knee pain": bodyloc inside problem) while neither layer overlaps itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TagSet:
    labels: tuple[str, ...]

    @property
    def size(self) -> int:
        return 1 + 2 * len(self.labels)

    def begin(self, label: str) -> int:
        return 1 + 2 * self.labels.index(label)

    def label_of(self, tag: int) -> str | None:
        return None if tag == 0 else self.labels[(tag - 1) // 2]

    def is_begin(self, tag: int) -> bool:
        return tag > 0 and (tag - 1) % 2 == 0

    @functools.lru_cache(maxsize=8)  # noqa: B019 (a handful of frozen tag sets per process)
    def transitions(self) -> np.ndarray:
        """log-space transition matrix: 0 where allowed, -inf where I-x follows anything but B-x/I-x."""
        n = self.size
        trans = np.zeros((n, n), dtype=np.float32)
        for to in range(1, n):
            if not self.is_begin(to):
                for frm in range(n):
                    if frm == 0 or self.label_of(frm) != self.label_of(to):
                        trans[frm, to] = -np.inf
        return trans

    @functools.lru_cache(maxsize=8)  # noqa: B019
    def start_scores(self) -> np.ndarray:
        s = np.zeros(self.size, dtype=np.float32)
        for t in range(1, self.size):
            if not self.is_begin(t):
                s[t] = -np.inf
        return s


def token_tags(offsets: list[tuple[int, int]], spans: list[tuple[int, int, str]], tagset: TagSet) -> list[int]:
    """Gold tag per token: B on the first token overlapping a span, I on the rest, O elsewhere."""
    tags = [0] * len(offsets)
    for s, e, label in spans:
        first = True
        for i, (ts, te) in enumerate(offsets):
            if te > ts and ts < e and te > s:
                tags[i] = tagset.begin(label) if first else tagset.begin(label) + 1
                first = False
    return tags


def token_span(offsets: list[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """Inclusive token indices covering a character span, or None when no token overlaps it."""
    idx = [i for i, (ts, te) in enumerate(offsets) if te > ts and ts < end and te > start]
    return (idx[0], idx[-1]) if idx else None


def viterbi(log_probs: np.ndarray, tagset: TagSet, learned: dict | None = None) -> list[int]:
    """Best tag path that is a valid BIO sequence; ``learned`` adds a CRF's start and transition
    scores (``{"start": [K], "transitions": [K][K]}``, see crf.py) to the BIO rules."""
    trans, start = tagset.transitions(), tagset.start_scores()
    if learned is not None:
        trans = trans + np.asarray(learned["transitions"], dtype=np.float32)
        start = start + np.asarray(learned["start"], dtype=np.float32)
    n_tok = log_probs.shape[0]
    if n_tok == 0:
        return []
    score = start + log_probs[0]
    back = np.zeros((n_tok, tagset.size), dtype=np.int64)
    for i in range(1, n_tok):
        cand = score[:, None] + trans
        back[i] = cand.argmax(axis=0)
        score = cand.max(axis=0) + log_probs[i]
    path = [int(score.argmax())]
    for i in range(n_tok - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return path[::-1]


def decode_spans(path: list[int], probs: np.ndarray, tagset: TagSet) -> list[tuple[int, int, str, float]]:
    """(first token, last token, label, confidence) per span in a valid BIO path.

    Confidence is the mean probability of the chosen tags over the span's tokens.
    """
    out: list[tuple[int, int, str, float]] = []
    i = 0
    while i < len(path):
        if tagset.is_begin(path[i]):
            j = i
            while j + 1 < len(path) and path[j + 1] == path[i] + 1:
                j += 1
            conf = float(np.mean([probs[k, path[k]] for k in range(i, j + 1)]))
            out.append((i, j, tagset.label_of(path[i]), conf))
            i = j + 1
        else:
            i += 1
    return out
