"""Texts -> encoder windows ("segments") with character offsets, and relation candidates.

Shared by training and inference so that both see exactly the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from kiwi_cas import schema
from kiwi_cas.extractors.bert.model import N_BETWEEN_BUCKETS, PAIR_INDEX, distance_bucket


@dataclass
class Segment:
    """One encoder window of one text: token ids with [CLS]/[SEP] and per-token char offsets."""

    text_index: int
    input_ids: list[int]
    offsets: list[tuple[int, int]]  # into the text; (0, 0) for special tokens
    entities: list[tuple[int, int, str]] = field(default_factory=list)  # token spans (inclusive)
    modifiers: list[tuple[int, int, str]] = field(default_factory=list)


def make_segments(tokenizer, texts: list[str], max_tokens: int) -> list[Segment]:
    """Tokenize texts; a text longer than ``max_tokens`` is cut into consecutive windows."""
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
    inner = max_tokens - 2
    segments: list[Segment] = []
    for ti, (ids, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        for w in range(0, max(len(ids), 1), inner):
            wid, woff = ids[w:w + inner], [tuple(o) for o in offs[w:w + inner]]
            if not wid:
                continue
            segments.append(Segment(ti, [tokenizer.cls_token_id, *wid, tokenizer.sep_token_id],
                                    [(0, 0), *woff, (0, 0)]))
    return segments


def pad_batch(segments: list[Segment], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s.input_ids) for s in segments)
    ids = torch.full((len(segments), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(segments), width), dtype=torch.long)
    for i, s in enumerate(segments):
        ids[i, :len(s.input_ids)] = torch.tensor(s.input_ids)
        mask[i, :len(s.input_ids)] = 1
    return ids, mask


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
