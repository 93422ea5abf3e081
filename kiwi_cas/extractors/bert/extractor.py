"""BertExtractor: batched inference of the BERT model over many texts at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from kiwi_cas.extractors.bert.artifacts import default_model_path, load_model
from kiwi_cas.extractors.bert.segments import Segment, candidate_pairs, make_segments, pad_batch
from kiwi_cas.extractors.bert.tagging import TagSet, decode_spans, token_span, viterbi
from kiwi_cas.spans import Extraction, Relation, Span


def configure_threads(threads: int | None = None) -> None:
    """Use all cores by default; ``KIWI_THREADS`` or ``threads`` overrides."""
    n = threads or int(os.environ.get("KIWI_THREADS", "0")) or os.cpu_count() or 1
    torch.set_num_threads(n)


class BertExtractor:
    """Entities, modifiers and relations from one encoder pass per sentence."""

    def __init__(self, model_dir: str | Path | None = None, batch_tokens: int = 4096,
                 net=None, tokenizer=None, meta=None, precision: str = "int8") -> None:
        """``precision="int8"`` (default): dynamic int8 quantization (per-channel) of the encoder's linear
        layers, about twice as fast on CPU at a small accuracy cost (both measured in the README);
        ``fp32`` runs the weights exactly as trained."""
        if net is None:
            net, tokenizer, meta = load_model(Path(model_dir) if model_dir else default_model_path())
            if precision == "int8":
                from torch.ao.quantization import per_channel_dynamic_qconfig

                net.encoder = torch.ao.quantization.quantize_dynamic(
                    net.encoder, {torch.nn.Linear: per_channel_dynamic_qconfig})
            elif precision != "fp32":
                raise ValueError(f"precision must be int8 or fp32, not {precision!r}")
        self.net, self.tokenizer, self.meta = net, tokenizer, meta
        self.batch_tokens = batch_tokens
        self.ent_tags = TagSet(tuple(meta.entity_labels))
        self.mod_tags = TagSet(tuple(meta.modifier_labels))
        self.name = f"bert:{meta.name}@{meta.version}"

    def extract(self, texts: Sequence[str], entities: Sequence[Sequence[Span]] | None = None) -> list[Extraction]:
        texts = list(texts)
        results = [Extraction() for _ in texts]
        segments = make_segments(self.tokenizer, texts, self.meta.max_tokens)
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
        was_training = self.net.training
        self.net.eval()
        with torch.inference_mode():
            batch: list[Segment] = []
            for i in order:
                seg = segments[i]
                if batch and (len(batch) + 1) * len(seg.input_ids) > self.batch_tokens:
                    self._run_batch(batch, results, given)
                    batch = []
                batch.append(seg)
            if batch:
                self._run_batch(batch, results, given)
        self.net.train(was_training)
        return results

    def _run_batch(self, batch: list[Segment], results: list[Extraction],
                   given: dict[int, list[Span]] | None) -> None:
        ids, mask = pad_batch(batch, self.tokenizer.pad_token_id)
        hidden, ent_logits, mod_logits = self.net(ids, mask)
        ent_lp = torch.log_softmax(ent_logits, -1).numpy()
        mod_lp = torch.log_softmax(mod_logits, -1).numpy()
        pair_rows: list[list[int]] = []
        pair_refs: list[tuple[int, Span, Span]] = []
        for row, seg in enumerate(batch):
            n = len(seg.input_ids)
            inner = slice(1, n - 1)
            offs = seg.offsets[inner]
            ent_spans: list[tuple[int, int, str]] = []
            ent_objs: list[Span] = []
            if given is None:
                for ts, te, label, conf in self._decode(ent_lp[row, inner], self.ent_tags):
                    span = Span(offs[ts][0], offs[te][1], label, conf)
                    ent_spans.append((ts + 1, te + 1, label))
                    ent_objs.append(span)
                results[seg.text_index].entities.extend(ent_objs)
            else:
                for ent in given[seg.text_index]:
                    tok = token_span(offs, ent.start, ent.end)
                    if tok is not None:
                        ent_spans.append((tok[0] + 1, tok[1] + 1, ent.label))
                        ent_objs.append(ent)
            mod_spans: list[tuple[int, int, str]] = []
            mod_objs: list[Span] = []
            for ts, te, label, conf in self._decode(mod_lp[row, inner], self.mod_tags):
                mod_spans.append((ts + 1, te + 1, label))
                mod_objs.append(Span(offs[ts][0], offs[te][1], label, conf))
            results[seg.text_index].modifiers.extend(mod_objs)
            rows, index = candidate_pairs(row, ent_spans, mod_spans)
            pair_rows.extend(rows)
            pair_refs.extend((seg.text_index, ent_objs[ei], mod_objs[mi]) for ei, mi in index)
        if pair_rows:
            probs = torch.sigmoid(self.net.score_pairs(hidden, torch.tensor(pair_rows))).numpy()
            for p, (ti, ent, mod) in zip(probs, pair_refs):
                if p >= self.meta.relation_threshold:
                    results[ti].relations.append(Relation(ent, mod, float(p)))

    @staticmethod
    def _decode(log_probs: np.ndarray, tagset: TagSet) -> list[tuple[int, int, str, float]]:
        path = viterbi(log_probs, tagset)
        return decode_spans(path, np.exp(log_probs), tagset)
