"""Fine-tune the BERT extractor on annotated notes (brat or Kiwi XMI).

One pass per sentence trains all three outputs together: entity BIO tags, modifier BIO
tags and the relation scorer (on gold spans, every allowed pair in the sentence is a
candidate). Seeded; dev metrics are printed each epoch and the best epoch is kept. With a
teacher model (``--teacher``) the losses also pull toward its tag posteriors and relation
probabilities (distill.py).
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

from kiwi_cas import __version__
from kiwi_cas.core.evaluate import evaluate
from kiwi_cas.errors import UsageError
from kiwi_cas.extractors.bert.crf import TagCRF
from kiwi_cas.extractors.bert.augment import mention_pool, replace_mentions
from kiwi_cas.extractors.bert.distill import SoftTargets, distill_loss, teacher_targets
from kiwi_cas.extractors.bert.artifacts import WORD_EMB_KEY, ModelMeta, build_net, resolve_base, save_model
from kiwi_cas.extractors.bert.extractor import BertExtractor
from kiwi_cas.extractors.bert.torch_runtime import TorchRuntime
from kiwi_cas.extractors.bert.train_config import TrainConfig
from kiwi_cas.extractors.settings import configure_threads
from kiwi_cas.extractors.bert.segments import (CASE_TYPES, Segment, candidate_pairs, make_segments, pad_batch,
                                                pad_case_types)
from kiwi_cas.extractors.bert.tagging import TagSet, token_span, token_tags
from kiwi_cas.core.notes import NoteInput, extract_notes
from kiwi_cas.core.splitter import split_sentences
from kiwi_cas.core.spans import Document


@dataclass
class TrainingExample:
    segment: Segment
    ent_tags: list[int]
    mod_tags: list[int]
    relations: set[tuple[tuple[int, int], tuple[int, int]]]
    text: str = ""  # the sentence the segment was cut from (a teacher reads it again)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def widen_token_types(encoder: nn.Module, n: int) -> None:
    """Give the encoder ``n`` token types, each starting as its type 0 (what pretraining fed every token),
    so that training starts from the base's behaviour and learns what case adds."""
    old = getattr(getattr(encoder, "embeddings", None), "token_type_embeddings", None)
    if old is None:
        raise UsageError(f"--case-types: the base encoder ({type(encoder).__name__}) has no token-type embeddings")
    # from given weights: no draw from the seeded generator, so the heads start as they would without this
    encoder.embeddings.token_type_embeddings = nn.Embedding.from_pretrained(
        old.weight.detach()[:1].expand(n, -1).clone(), freeze=False)
    encoder.config.type_vocab_size = n


def build_examples(docs: list[Document], tokenizer, ent_tags: TagSet, mod_tags: TagSet,
                   max_tokens: int, context_tokens: int = 0, case_types: bool = False) -> list[TrainingExample]:
    """Sentence-level training examples with token-level gold tags and relations."""
    examples: list[TrainingExample] = []
    for doc in docs:
        sents = split_sentences(doc.text)
        texts = [doc.text[s:e] for s, e in sents]
        segments = make_segments(tokenizer, texts, max_tokens, [""] + texts[:-1], context_tokens, case_types)
        for seg in segments:
            s0, e0 = sents[seg.text_index]
            first = seg.first
            inner = seg.offsets[first:-1]
            lo, hi = s0 + inner[0][0], s0 + inner[-1][1]

            def local(spans):
                return [(x.start - s0, x.end - s0, x.label) for x in spans if lo <= x.start and x.end <= hi]

            ents, mods = local(doc.annotations.entities), local(doc.annotations.modifiers)
            tok = {}
            for s, e, label in ents + mods:
                t = token_span(inner, s, e)
                if t is not None:
                    tok[(s, e, label)] = (t[0] + first, t[1] + first)
            seg.entities = [(*tok[k], k[2]) for k in ents if k in tok]
            seg.modifiers = [(*tok[k], k[2]) for k in mods if k in tok]
            rels = set()
            for r in doc.annotations.relations:
                ek = (r.entity.start - s0, r.entity.end - s0, r.entity.label)
                mk = (r.modifier.start - s0, r.modifier.end - s0, r.modifier.label)
                if ek in tok and mk in tok:
                    rels.add((tok[ek], tok[mk]))
            pad, head = [-100], [-100] * first
            examples.append(TrainingExample(seg, head + token_tags(inner, ents, ent_tags) + pad,
                                            head + token_tags(inner, mods, mod_tags) + pad, rels,
                                            texts[seg.text_index]))
    return examples


def dev_scores(extractor: BertExtractor, dev: list[Document]) -> dict:
    """End-to-end (own entities) and given-gold-entity RE scores on dev notes."""
    pred = extract_notes(extractor, [NoteInput(d.text) for d in dev])
    e2e = evaluate(dev, [Document(d.name, d.text, p) for d, p in zip(dev, pred)])
    given = extract_notes(extractor, [NoteInput(d.text, entities=list(d.annotations.entities)) for d in dev])
    re_given = evaluate(dev, [Document(d.name, d.text, p) for d, p in zip(dev, given)])
    out = {}
    for task in ("ner", "modifier", "re"):
        for mode in ("exact", "relaxed"):
            out[f"{task}_{mode}_f1"] = round(e2e.micro(task, mode).f1, 4)
    out["re_given_entities_exact_f1"] = round(re_given.micro("re", "exact").f1, 4)
    out["re_given_entities_relaxed_f1"] = round(re_given.micro("re", "relaxed").f1, 4)
    return out


def corpus_fingerprint(docs: list[Document]) -> str:
    h = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.name):
        h.update(d.name.encode())
        h.update(d.text.encode())
    return h.hexdigest()[:16]


def train(train_docs: list[Document], dev_docs: list[Document], out_dir: Path, config: TrainConfig,
          base_model: str | None = None, source: str = "", log: Callable[[str], None] = print) -> ModelMeta:
    if config.teacher and config.augment > 0:
        raise UsageError("--teacher and --augment do not combine: soft targets are computed once, on the notes as given")
    configure_threads()
    seed_everything(config.seed)
    base_path, base_pkg = resolve_base(base_model)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    encoder = AutoModel.from_pretrained(base_path, add_pooling_layer=False)
    if config.case_types:
        widen_token_types(encoder, len(CASE_TYPES))
    shares_embeddings = base_pkg if not config.tune_word_embeddings else None
    meta = ModelMeta(name=config.name, version=__version__, base_model=base_pkg or str(base_path),
                     shared_word_embeddings_from=shares_embeddings, max_tokens=config.max_tokens,
                     context_tokens=config.context_tokens, case_types=config.case_types)
    net = build_net(encoder, meta)
    order_seed = config.seed if config.order_seed is None else config.order_seed
    ent_tags, mod_tags = TagSet(tuple(meta.entity_labels)), TagSet(tuple(meta.modifier_labels))
    examples = build_examples(train_docs, tokenizer, ent_tags, mod_tags, config.max_tokens, config.context_tokens,
                              config.case_types)
    log(f"training on {len(train_docs)} notes ({len(examples)} sentences), dev {len(dev_docs)} notes")
    soft: list[SoftTargets] = []
    if config.teacher:
        soft = teacher_targets(Path(config.teacher), [e.text for e in examples], [e.segment for e in examples],
                               meta.entity_labels, meta.modifier_labels, log=log)

    for name, p in net.named_parameters():
        if shares_embeddings and name == WORD_EMB_KEY:
            p.requires_grad = False  # shared with the base package, never stored again
    enc_params = [p for n, p in net.named_parameters() if n.startswith("encoder.") and p.requires_grad]
    head_params = [p for n, p in net.named_parameters() if not n.startswith("encoder.")]
    crfs = {"entity": TagCRF(ent_tags), "modifier": TagCRF(mod_tags)} if config.crf else {}
    if config.order_seed is not None:
        torch.manual_seed(order_seed)  # every weight exists by now: from here the seed only drives dropout
    head_params += [p for c in crfs.values() for p in c.parameters()]
    trained = [p for p in net.parameters() if p.requires_grad] + [p for c in crfs.values() for p in c.parameters()]
    optim = torch.optim.AdamW([{"params": enc_params, "lr": config.lr},
                               {"params": head_params, "lr": config.head_lr}], weight_decay=0.01)
    steps_per_epoch = (len(examples) + config.batch_size - 1) // config.batch_size
    total = steps_per_epoch * config.epochs
    sched = get_linear_schedule_with_warmup(optim, int(config.warmup * total), total)
    ce = nn.CrossEntropyLoss(ignore_index=-100)
    bce = nn.BCEWithLogitsLoss()
    rng = random.Random(order_seed)
    pool = mention_pool(train_docs) if config.augment > 0 else {}
    aug_rng = random.Random(order_seed + 1)
    best_state, best_crf, best_score, best_metrics, history = None, None, -1.0, {}, []
    started = time.time()
    for epoch in range(1, config.epochs + 1):
        net.train()
        t0 = time.time()
        if config.augment > 0:
            examples = build_examples([replace_mentions(d, pool, aug_rng, config.augment) for d in train_docs],
                                      tokenizer, ent_tags, mod_tags, config.max_tokens, config.context_tokens,
                                      config.case_types)
        # length-bucketed shuffled batches: similar lengths pad less
        idx = list(range(len(examples)))
        rng.shuffle(idx)
        chunks = [sorted(idx[i:i + config.batch_size * 20], key=lambda j: len(examples[j].segment.input_ids))
                  for i in range(0, len(idx), config.batch_size * 20)]
        batches = [c[i:i + config.batch_size] for c in chunks for i in range(0, len(c), config.batch_size)]
        rng.shuffle(batches)
        total_loss = 0.0
        for b in batches:
            exs = [examples[j] for j in b]
            ids, mask = map(torch.from_numpy, pad_batch([e.segment for e in exs], tokenizer.pad_token_id))
            cases = torch.from_numpy(pad_case_types([e.segment for e in exs])) if config.case_types else None
            width = ids.shape[1]
            et = torch.tensor([e.ent_tags + [-100] * (width - len(e.ent_tags)) for e in exs])
            mt = torch.tensor([e.mod_tags + [-100] * (width - len(e.mod_tags)) for e in exs])
            hidden, ent_logits, mod_logits = net(ids, mask, cases)
            if crfs:  # per scored token, as the cross-entropy is
                scored = max(int((et != -100).sum()), 1)
                loss = (crfs["entity"].nll(ent_logits, et) + crfs["modifier"].nll(mod_logits, mt)) / scored
            else:
                loss = ce(ent_logits.reshape(-1, ent_logits.shape[-1]), et.reshape(-1)) + \
                    ce(mod_logits.reshape(-1, mod_logits.shape[-1]), mt.reshape(-1))
            rows, labels, keys = [], [], []
            for r, e in enumerate(exs):
                pr, index = candidate_pairs(r, e.segment.entities, e.segment.modifiers)
                rows.extend(pr)
                keys.extend((r, k) for k in index)
                labels.extend(1.0 if ((e.segment.entities[ei][0], e.segment.entities[ei][1]),
                                      (e.segment.modifiers[mi][0], e.segment.modifiers[mi][1])) in e.relations
                              else 0.0 for ei, mi in index)
            logits = None
            if rows:
                logits = net.score_pairs(hidden, torch.tensor(rows))
                loss = loss + config.rel_weight * bce(logits, torch.tensor(labels))
            if soft:
                if crfs:
                    ent_logp = crfs["entity"].log_marginals(ent_logits, et != -100)
                    mod_logp = crfs["modifier"].log_marginals(mod_logits, mt != -100)
                else:
                    ent_logp, mod_logp = ent_logits.log_softmax(-1), mod_logits.log_softmax(-1)
                loss = loss + config.distill_weight * distill_loss(ent_logp, mod_logp, logits, keys,
                                                                   [soft[j] for j in b])
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optim.step()
            sched.step()
            total_loss += float(loss.detach())
        if crfs:
            meta.crf = {layer: c.export() for layer, c in crfs.items()}
        line = f"epoch {epoch}/{config.epochs} loss {total_loss / max(len(batches), 1):.4f} ({time.time() - t0:.0f}s)"
        if dev_docs:
            metrics = dev_scores(BertExtractor(TorchRuntime(net=net, tokenizer=tokenizer, meta=meta)), dev_docs)
            history.append({"epoch": epoch, **metrics})
            score = metrics["ner_exact_f1"] + metrics["re_exact_f1"]
            line += "  dev " + " ".join(f"{k}={v:.3f}" for k, v in metrics.items() if "exact" in k)
            if score > best_score:
                best_score, best_metrics = score, metrics
                best_state = copy.deepcopy(net.state_dict())
                best_crf = meta.crf
                line += "  *best*"
        log(line)
    if best_state is not None:
        net.load_state_dict(best_state)
        meta.crf = best_crf
    meta.dev_metrics = {"best": best_metrics, "history": history}
    meta.training = {
        "data": source, "notes": len(train_docs), "dev_notes": len(dev_docs),
        "train_fingerprint": corpus_fingerprint(train_docs),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started), "threads": torch.get_num_threads(),
        "config": config.__dict__,
    }
    save_model(net, tokenizer, meta, out_dir)
    log(f"saved {out_dir} ({meta.training['seconds']}s)")
    return meta
