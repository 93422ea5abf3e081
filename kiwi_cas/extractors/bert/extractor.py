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
from kiwi_cas.extractors.bert.segments import Segment, candidate_pairs, make_segments, pad_batch
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

    @classmethod
    def from_config(cls, config: BertConfig) -> "BertExtractor":
        return cls(load_runtime(config.runtime, Path(config.model or default_model_path()), config.precision,
                                threads=config.threads))

    def extract(self, texts: Sequence[str], entities: Sequence[Sequence[Span]] | None = None,
                contexts: Sequence[str] | None = None) -> list[Extraction]:
        texts = list(texts)
        results = [Extraction() for _ in texts]
        segments = make_segments(self.tokenizer, texts, self.meta.max_tokens,
                                 list(contexts) if contexts is not None else None, self.meta.context_tokens)
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
        encoded = self.runtime.encode(ids, mask)
        ent_lp, mod_lp = encoded.entity_log_probs, encoded.modifier_log_probs
        pair_rows: list[list[int]] = []
        pair_refs: list[tuple[int, Span, Span]] = []
        for row, seg in enumerate(batch):
            n, first = len(seg.input_ids), seg.first
            inner = slice(first, n - 1)
            offs = seg.offsets[inner]
            ent_spans: list[tuple[int, int, str]] = []
            ent_objs: list[Span] = []
            if given is None:
                for ts, te, label, conf in self._decode(ent_lp[row, inner], self.ent_tags):
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
            mod_objs: list[Span] = []
            for ts, te, label, conf in self._decode(mod_lp[row, inner], self.mod_tags):
                mod_spans.append((ts + first, te + first, label))
                mod_objs.append(Span(offs[ts][0], offs[te][1], label, conf))
            results[seg.text_index].modifiers.extend(mod_objs)
            rows, index = candidate_pairs(row, ent_spans, mod_spans)
            pair_rows.extend(rows)
            pair_refs.extend((seg.text_index, ent_objs[ei], mod_objs[mi]) for ei, mi in index)
        if pair_rows:
            probs = self.runtime.score_pairs(encoded, np.asarray(pair_rows, dtype=np.int64))
            for p, (ti, ent, mod) in zip(probs, pair_refs):
                if p >= self.meta.relation_threshold:
                    results[ti].relations.append(Relation(ent, mod, float(p)))

    @staticmethod
    def _decode(log_probs: np.ndarray, tagset: TagSet) -> list[tuple[int, int, str, float]]:
        path = viterbi(log_probs, tagset)
        return decode_spans(path, np.exp(log_probs), tagset)
