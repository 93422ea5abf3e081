"""Soft targets from a stronger, slower teacher model (``train bert --teacher DIR``).

A base-size encoder (all-mpnet-base-v2, README: Models) finds entities better than the
shipped MiniLM but runs 4.4x slower. Distillation trains the small model to match the
teacher's per-token tag scores and relation probabilities as well as the gold labels, so
that the student keeps part of the teacher's accuracy at its own speed.

The two models tokenize differently, so the teacher is run on the same sentence texts and
its outputs are aligned to the student's tokens by character offsets: a student token gets
the teacher's scores of the teacher token that starts at the same character (word-initial
tokens always do; a subword split the two vocabularies do differently gets gold alone).
A relation target is the teacher's probability for the same pair of gold spans. Targets
are computed once, before training, with the teacher in eval mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from kiwi_cas.errors import UsageError
from kiwi_cas.extractors.bert.artifacts import load_model
from kiwi_cas.extractors.bert.crf import bio_scores, log_marginals
from kiwi_cas.extractors.bert.segments import Segment, candidate_pairs, make_segments, pad_batch, pad_case_types
from kiwi_cas.extractors.bert.tagging import TagSet, token_span


@dataclass
class SoftTargets:
    """The teacher's view of one training example, in the student's token positions."""

    positions: list[int] = field(default_factory=list)  # student token indices with an aligned teacher token
    entity: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # [n, K] log posteriors
    modifier: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # teacher probability per (entity index, modifier index) of the example's gold spans
    relations: dict[tuple[int, int], float] = field(default_factory=dict)


def _char_span(seg: Segment, span: tuple[int, int, str]) -> tuple[int, int]:
    return seg.offsets[span[0]][0], seg.offsets[span[1]][1]


def _teacher_spans(tseg: Segment, seg: Segment, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str] | None]:
    """The student's token spans as token spans of the teacher window, None where a span is not inside it."""
    inner = tseg.offsets[tseg.first:-1]
    lo, hi = inner[0][0], inner[-1][1]
    out: list[tuple[int, int, str] | None] = []
    for sp in spans:
        s, e = _char_span(seg, sp)
        t = token_span(inner, s, e) if lo <= s and e <= hi else None
        out.append(None if t is None else (t[0] + tseg.first, t[1] + tseg.first, sp[2]))
    return out


def teacher_targets(teacher_dir: Path, texts: Sequence[str], segments: Sequence[Segment],
                    entity_labels: Sequence[str], modifier_labels: Sequence[str], batch_size: int = 16,
                    log: Callable[[str], None] = print) -> list[SoftTargets]:
    """Soft targets for each student segment (``texts[i]`` is the sentence ``segments[i]`` was cut from)."""
    net, tokenizer, meta = load_model(teacher_dir)
    if tuple(meta.entity_labels) != tuple(entity_labels) or tuple(meta.modifier_labels) != tuple(modifier_labels):
        raise UsageError(f"--teacher {teacher_dir}: its labels differ from the student's")
    crf = meta.crf or {}
    ent_crf = bio_scores(TagSet(tuple(entity_labels)), crf.get("entity"))
    mod_crf = bio_scores(TagSet(tuple(modifier_labels)), crf.get("modifier"))
    targets = [SoftTargets() for _ in segments]
    by_text: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        by_text.setdefault(t, []).append(i)
    unique = sorted(by_text, key=len)
    n_aligned = 0
    with torch.inference_mode():
        for b in range(0, len(unique), batch_size):
            chunk = unique[b:b + batch_size]
            tsegs = make_segments(tokenizer, chunk, meta.max_tokens, case_types=meta.case_types)
            ids, mask = map(torch.from_numpy, pad_batch(tsegs, tokenizer.pad_token_id))
            cases = torch.from_numpy(pad_case_types(tsegs)) if meta.case_types else None
            hidden, ent_logits, mod_logits = net(ids, mask, cases)
            scored = torch.zeros_like(mask, dtype=torch.bool)
            for row, tseg in enumerate(tsegs):
                scored[row, tseg.first:len(tseg.input_ids) - 1] = True
            ent_logp, mod_logp = log_marginals(ent_logits, scored, *ent_crf), log_marginals(mod_logits, scored, *mod_crf)
            for row, tseg in enumerate(tsegs):
                starts = {tseg.offsets[p][0]: p for p in range(tseg.first, len(tseg.input_ids) - 1)}
                for i in by_text[chunk[tseg.text_index]]:
                    seg, tgt = segments[i], targets[i]
                    pos = [(p, starts[seg.offsets[p][0]]) for p in range(seg.first, len(seg.input_ids) - 1)
                           if seg.offsets[p][0] in starts and p not in tgt.positions]
                    if pos:
                        n_aligned += len(pos)
                        tp = [t for _, t in pos]
                        tgt.positions += [p for p, _ in pos]
                        ent, mod = ent_logp[row, tp].numpy(), mod_logp[row, tp].numpy()
                        tgt.entity = np.concatenate([tgt.entity.reshape(-1, ent.shape[1]), ent])
                        tgt.modifier = np.concatenate([tgt.modifier.reshape(-1, mod.shape[1]), mod])
                    ents, mods = _teacher_spans(tseg, seg, seg.entities), _teacher_spans(tseg, seg, seg.modifiers)
                    e_keep = [k for k, s in enumerate(ents) if s is not None]
                    m_keep = [k for k, s in enumerate(mods) if s is not None]
                    pairs, index = candidate_pairs(row, [ents[k] for k in e_keep], [mods[k] for k in m_keep])
                    if pairs:
                        probs = torch.sigmoid(net.score_pairs(hidden, torch.tensor(pairs))).tolist()
                        for (ei, mi), p in zip(index, probs):
                            tgt.relations[(e_keep[ei], m_keep[mi])] = p
    n_tokens = sum(len(seg.input_ids) - 1 - seg.first for seg in segments)
    log(f"teacher {Path(teacher_dir).name}: soft targets for {len(segments)} sentences, "
        f"{n_aligned} of {n_tokens} tokens aligned by character offset")
    return targets


def distill_loss(ent_logp: torch.Tensor, mod_logp: torch.Tensor, rel_logits: torch.Tensor | None,
                 rel_keys: list[tuple[int, tuple[int, int]]], batch: list[SoftTargets]) -> torch.Tensor:
    """KL(teacher || student) of the per-token tag posteriors over the aligned tokens (mean per token,
    each layer) plus the binary cross-entropy of the relation logits against the teacher's probabilities.

    ``*_logp``: the student's log posteriors [B, T, K] (a CRF's marginals, or a log-softmax);
    ``rel_keys``: (batch row, (entity index, modifier index)) of each row of ``rel_logits``."""
    terms = []
    rows = [r for r, t in enumerate(batch) for _ in t.positions]
    cols = [p for t in batch for p in t.positions]
    if cols:
        for logp, teacher in ((ent_logp, [t.entity for t in batch if t.positions]),
                              (mod_logp, [t.modifier for t in batch if t.positions])):
            target = torch.from_numpy(np.concatenate(teacher))
            terms.append(torch.nn.functional.kl_div(logp[rows, cols], target, log_target=True, reduction="batchmean"))
    if rel_logits is not None and rel_keys:
        probs = [batch[r].relations.get(k, math.nan) for r, k in rel_keys]
        keep = [i for i, p in enumerate(probs) if not math.isnan(p)]
        if keep:
            terms.append(torch.nn.functional.binary_cross_entropy_with_logits(
                rel_logits[keep], torch.tensor([probs[i] for i in keep], dtype=rel_logits.dtype)))
    return sum(terms) if terms else ent_logp.sum() * 0.0
