"""BertExtractor: batched decoding of the BERT model's outputs over many texts at once.

Knows nothing of torch: a runtime (``runtime.py``) turns padded token ids into tag
log-probabilities and relation scores; everything here is numpy and plain spans.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from kiwi_cas.core.spans import Extraction, Relation, Span
from kiwi_cas.extractors.bert.runtime import BertRuntime, load_runtime
from kiwi_cas.extractors.bert.segments import Segment, candidate_pairs, make_segments, pad_batch, pad_case_types
from kiwi_cas.extractors.bert.tagging import TagSet, decode_spans, token_span, viterbi
from kiwi_cas.extractors.config import BertConfig
from kiwi_cas.extractors.settings import packaged_model

DEFAULT_MODEL = "bert-mtsamples"


def default_model_path() -> Path:
    return packaged_model(DEFAULT_MODEL)


class BertExtractor:
    """Entities, modifiers and relations from one encoder pass per sentence."""

    #: padded tokens per encoder call: on a 2-core CPU 1,024 beat 4,096 by 20% (cache-sized batches;
    #: measured with ONNX Runtime over 40 notes: 512 0.138, 1024 0.125, 2048 0.131, 4096 0.157 s/note)
    BATCH_TOKENS = 1024

    def __init__(self, runtime: BertRuntime, batch_tokens: int = BATCH_TOKENS) -> None:
        self.runtime = runtime
        self.tokenizer, self.meta = runtime.tokenizer, runtime.meta
        self.batch_tokens = batch_tokens
        self.ent_tags = TagSet(tuple(self.meta.entity_labels))
        self.mod_tags = TagSet(tuple(self.meta.modifier_labels))
        self.name = f"bert:{self.meta.name}@{self.meta.version}"
        # a --crf model's scores as arrays once, not converted from JSON lists per sentence
        self._crf = {layer: {k: np.asarray(v, dtype=np.float32) for k, v in scores.items()}
                     for layer, scores in (self.meta.crf or {}).items()}

    @classmethod
    def from_config(cls, config: BertConfig) -> "BertExtractor":
        return cls(load_runtime(config.runtime, Path(config.model or default_model_path()), config.precision,
                                threads=config.threads))

    def extract(self, texts: Sequence[str], entities: Sequence[Sequence[Span]] | None = None,
                contexts: Sequence[str] | None = None) -> list[Extraction]:
        texts = list(texts)
        results = [Extraction() for _ in texts]
        segments = make_segments(self.tokenizer, texts, self.meta.max_tokens,
                                 list(contexts) if contexts is not None else None, self.meta.context_tokens,
                                 self.meta.case_types)
        # task "re": per text, the given entities, one per (start, end, label), in offset order
        given: dict[int, list[Span]] | None = None
        if entities is not None:
            given = {}
            for ti, ents in enumerate(entities):
                unique: dict[tuple[int, int, str], Span] = {}
                for s in ents:
                    unique.setdefault(s.key(), s)
                given[ti] = [unique[k] for k in sorted(unique)]
                results[ti].entities.extend(ents)
        order = sorted(range(len(segments)), key=lambda i: len(segments[i].input_ids))
        batch: list[Segment] = []
        for i in order:
            seg = segments[i]
            if batch and (len(batch) + 1) * len(seg.input_ids) > self.batch_tokens:
                self._run_batch(batch, results, given)
                batch = []
            batch.append(seg)
        if batch:
            self._run_batch(batch, results, given)
        return results

    def _run_batch(self, batch: list[Segment], results: list[Extraction],
                   given: dict[int, list[Span]] | None) -> None:
        ids, mask = pad_batch(batch, self.tokenizer.pad_token_id)
        encoded = self.runtime.encode(ids, mask, pad_case_types(batch) if self.meta.case_types else None)
        ent_lp, mod_lp = encoded.entity_log_probs, encoded.modifier_log_probs
        pair_rows: list[list[int]] = []
        pair_refs: list[tuple[int, Span, int]] = []  # (text, entity, index into modifiers) per candidate pair
        modifiers: list[tuple[int, Span]] = []  # (text, span), kept back until the relations are chosen
        for row, seg in enumerate(batch):
            n, first = len(seg.input_ids), seg.first
            inner = slice(first, n - 1)
            offs = seg.offsets[inner]
            ent_spans: list[tuple[int, int, str]] = []
            ent_objs: list[Span] = []
            if given is None:
                for ts, te, label, conf in self._decode(ent_lp[row, inner], self.ent_tags, self.meta.entity_o_bias,
                                                             self._learned("entity")):
                    span = Span(offs[ts][0], offs[te][1], label, conf)
                    ent_spans.append((ts + first, te + first, label))
                    ent_objs.append(span)
                results[seg.text_index].entities.extend(ent_objs)
            else:
                for ent in given[seg.text_index]:
                    tok = token_span(offs, ent.start, ent.end)
                    if tok is not None:
                        ent_spans.append((tok[0] + first, tok[1] + first, ent.label))
                        ent_objs.append(ent)
            mod_spans: list[tuple[int, int, str]] = []
            for ts, te, label, conf in self._decode(mod_lp[row, inner], self.mod_tags, self.meta.modifier_o_bias,
                                                         self._learned("modifier")):
                mod_spans.append((ts + first, te + first, label))
                modifiers.append((seg.text_index, Span(offs[ts][0], offs[te][1], label, conf)))
            rows, index = candidate_pairs(row, ent_spans, mod_spans)
            pair_rows.extend(rows)
            mod_base = len(modifiers) - len(mod_spans)
            pair_refs.extend((seg.text_index, ent_objs[ei], mod_base + mi) for ei, mi in index)
        probs = (self.runtime.score_pairs(encoded, np.asarray(pair_rows, dtype=np.int64)) if pair_rows
                 else np.zeros(0, dtype=np.float32))
        chosen = link_modifiers([(mi, p) for (_, _, mi), p in zip(pair_refs, probs)], self.meta.relation_threshold,
                                self.meta.attach_floor)
        linked = set()
        for pair in chosen:
            ti, ent, mi = pair_refs[pair]
            results[ti].relations.append(Relation(ent, modifiers[mi][1], float(probs[pair])))
            linked.add(mi)
        for mi, (ti, mod) in enumerate(modifiers):
            if mi in linked or not self.meta.drop_unlinked_modifiers:
                results[ti].modifiers.append(mod)

    def _learned(self, layer: str) -> dict | None:
        """The CRF scores of a tag layer, for a model trained with --crf; None otherwise."""
        return self._crf.get(layer)

    @staticmethod
    def _decode(log_probs: np.ndarray, tagset: TagSet, o_bias: float = 0.0,
                learned: dict | None = None) -> list[tuple[int, int, str, float]]:
        """Spans of the best valid BIO path; ``o_bias`` shifts the O tag's score (confidences stay unbiased).
        A tag's log-probability differs from its CRF emission score by one constant per token, so
        the CRF's best path is found from the same log-probabilities."""
        scores = log_probs
        if o_bias:
            scores = log_probs.copy()
            scores[:, 0] += o_bias
        return decode_spans(viterbi(scores, tagset, learned), np.exp(log_probs), tagset)


def link_modifiers(candidates: list[tuple[int, float]], threshold: float, attach_floor: float | None) -> list[int]:
    """Which candidate pairs become relations, given (modifier index, probability) per pair.

    Every pair reaching ``threshold`` is a relation (a negation may cover several problems). A
    modifier none of whose pairs reaches it is linked to its single best entity when that pair
    reaches ``attach_floor`` (3,866 of the 3,919 gold modifiers in the training notes are linked).
    On the MTSamples folds neither number changed a figure by 0.01 (README, levers), so the shipped
    model keeps 0.5 and no floor; a model trained on other notes may balance differently.
    """
    chosen = [i for i, (_, p) in enumerate(candidates) if p >= threshold]
    if attach_floor is not None:
        linked = {candidates[i][0] for i in chosen}
        best: dict[int, int] = {}
        for i, (mi, p) in enumerate(candidates):
            if mi not in linked and p >= attach_floor and (mi not in best or p > candidates[best[mi]][1]):
                best[mi] = i
        chosen.extend(best.values())
    return sorted(chosen)
