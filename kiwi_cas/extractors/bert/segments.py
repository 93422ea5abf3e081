"""Texts -> encoder windows ("segments") with character offsets, and relation candidates.

Shared by training and inference so that both see exactly the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kiwi_cas.core import schema

#: the allowed (entity, modifier) pairs, in a fixed order (index = pair-type id)
PAIR_TYPES: tuple[tuple[str, str], ...] = tuple(
    (e, m) for e in schema.ENTITY_LABELS for m in schema.ALLOWED_PAIRS[e]
)
PAIR_INDEX: dict[tuple[str, str], int] = {p: i for i, p in enumerate(PAIR_TYPES)}

_DIST_EDGES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def distance_bucket(entity_start: int, modifier_start: int) -> int:
    """Signed token distance, bucketed: 0..12 for modifier before entity, 13..25 after."""
    d = modifier_start - entity_start
    b = sum(1 for edge in _DIST_EDGES if abs(d) >= edge)
    return b if d < 0 else b + len(_DIST_EDGES) + 1


N_DIST_BUCKETS = 2 * (len(_DIST_EDGES) + 1)
N_BETWEEN_BUCKETS = 6

#: letter-case classes of a token's own characters, fed as token types to a model trained with
#: ``--case-types`` (the packaged MiniLM is uncased: "MS", "Ms" and "ms" reach it as the same ids)
CASE_TYPES = ("lower or no letters", "capitalized", "all capitals", "capital inside")


def case_type(piece: str) -> int:
    """The :data:`CASE_TYPES` index of a token's text. Class 0 is what every token was in pretraining
    (one token type), so lower-case text reads exactly as before."""
    letters = [c for c in piece if c.isalpha()]
    if not letters or not any(c.isupper() for c in letters):
        return 0
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return 2
    return 1 if letters[0].isupper() else 3


@dataclass
class Segment:
    """One encoder window of one text: token ids with [CLS]/[SEP] and per-token char offsets."""

    text_index: int
    input_ids: list[int]
    offsets: list[tuple[int, int]]  # into the text; (0, 0) for special and context tokens
    first: int = 1  # index of the text's first token (after [CLS] and any context tokens)
    entities: list[tuple[int, int, str]] = field(default_factory=list)  # token spans (inclusive)
    modifiers: list[tuple[int, int, str]] = field(default_factory=list)
    # per token (:func:`case_type`), 0 for special tokens; empty unless make_segments(case_types=True)
    case_types: list[int] = field(default_factory=list)


def make_segments(tokenizer, texts: list[str], max_tokens: int, contexts: list[str] | None = None,
                  context_tokens: int = 0, case_types: bool = False) -> list[Segment]:
    """Tokenize texts; a text longer than ``max_tokens`` is cut into consecutive windows.

    With ``context_tokens`` > 0 and ``contexts`` given, each window reads
    ``[CLS] context [SEP] text [SEP]``: the last ``context_tokens`` tokens of the text's left
    context (the previous sentence of the note), so that a fragment such as "Aspirin 81 mg."
    is read after its section header. Context tokens are never tagged.
    With ``case_types`` each segment also carries its tokens' case classes (a ``--case-types`` model);
    other models skip that work.
    """
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
    ctx_ids: list[list[int]] = [[] for _ in texts]
    if contexts is not None and context_tokens > 0:
        ctx_ids = [ids[-context_tokens:] if ids else [] for ids in
                   tokenizer(list(contexts), add_special_tokens=False, return_offsets_mapping=True)["input_ids"]]
    segments: list[Segment] = []
    for ti, (ids, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        head = [tokenizer.cls_token_id, *ctx_ids[ti], tokenizer.sep_token_id] if ctx_ids[ti] else [tokenizer.cls_token_id]
        inner = max_tokens - len(head) - 1
        for w in range(0, max(len(ids), 1), inner):
            wid, woff = ids[w:w + inner], [tuple(o) for o in offs[w:w + inner]]
            if not wid:
                continue
            cases = [0] * len(head) + [case_type(texts[ti][a:b]) for a, b in woff] + [0] if case_types else []
            segments.append(Segment(ti, [*head, *wid, tokenizer.sep_token_id],
                                    [(0, 0)] * len(head) + [*woff, (0, 0)], first=len(head), case_types=cases))
    return segments


def pad_batch(segments: list[Segment], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 ``(ids, attention mask)`` of shape [batch, longest segment]."""
    width = max(len(s.input_ids) for s in segments)
    ids = np.full((len(segments), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(segments), width), dtype=np.int64)
    for i, s in enumerate(segments):
        ids[i, :len(s.input_ids)] = s.input_ids
        mask[i, :len(s.input_ids)] = 1
    return ids, mask


def pad_case_types(segments: list[Segment]) -> np.ndarray:
    """int64 token types [batch, longest segment] for a ``--case-types`` model: each token's case class."""
    width = max(len(s.input_ids) for s in segments)
    types = np.zeros((len(segments), width), dtype=np.int64)
    for i, s in enumerate(segments):
        if len(s.case_types) != len(s.input_ids):
            raise ValueError("segment made without case types: make_segments(..., case_types=True)")
        types[i, :len(s.case_types)] = s.case_types
    return types


def candidate_pairs(row: int, entities: list[tuple[int, int, str]], modifiers: list[tuple[int, int, str]]
                    ) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """All allowed (entity, modifier) pairs of one segment.

    Returns pair feature rows for :meth:`KiwiBertNet.score_pairs` and (entity index,
    modifier index) for each row.
    """
    rows: list[list[int]] = []
    index: list[tuple[int, int]] = []
    starts = sorted(e[0] for e in entities)
    for ei, (es, ee, el) in enumerate(entities):
        for mi, (ms, me, ml) in enumerate(modifiers):
            if not schema.is_allowed(el, ml):
                continue
            lo, hi = min(es, ms), max(es, ms)
            between = sum(1 for s in starts if lo < s < hi)
            rows.append([row, es, ee, ms, me, PAIR_INDEX[(el, ml)], distance_bucket(es, ms),
                         min(between, N_BETWEEN_BUCKETS - 1)])
            index.append((ei, mi))
    return rows, index
