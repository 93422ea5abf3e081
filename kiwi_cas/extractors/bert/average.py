"""Average BERT model folders weight by weight (a "model soup", Wortsman et al. 2022).

Runs fine-tuned from the same starting weights (same base, same ``--seed``) and differing only
in batch order and dropout (``--order-seed``) land close enough together that the mean of their
weights is itself a good model, at one encoder pass per sentence, where an ensemble of the same
runs would cost one per run (on the MTSamples folds, two-run soups scored within the spread
between single runs: README, levers). Runs from different
starting weights are refused, because their heads' units need not line up and the mean of
unrelated weights is noise. The learned CRF scores are averaged alike.
"""

from __future__ import annotations

import copy
import datetime as _dt
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from kiwi_cas.errors import UsageError
from kiwi_cas.extractors.bert.artifacts import ModelMeta, load_model, save_model

#: meta fields that must agree for weights to be averaged: what the network is and what it was fed
_SAME_SHAPE = ("base_model", "shared_word_embeddings_from", "entity_labels", "modifier_labels", "max_tokens",
               "context_tokens", "rel_dim", "case_types")


def _seed(meta: ModelMeta) -> int | None:
    """The seed of a run's starting head weights (its base encoder is one of the ``_SAME_SHAPE`` fields)."""
    return meta.training.get("config", {}).get("seed")


def check_compatible(folders: Sequence[Path], metas: Sequence[ModelMeta]) -> None:
    first = metas[0]
    for folder, meta in zip(folders[1:], metas[1:]):
        for name in _SAME_SHAPE:
            if getattr(meta, name) != getattr(first, name):
                raise UsageError(f"{folder}: {name} differs from {folders[0]}'s; only runs of one recipe can be averaged")
        if (meta.crf is None) != (first.crf is None):
            raise UsageError(f"{folder}: one model has CRF scores and the other not (train bert --crf/--no-crf)")
        if _seed(meta) != _seed(first):
            raise UsageError(
                f"{folder}: starts from other weights than {folders[0]} (--seed {_seed(meta)} vs {_seed(first)}); "
                "train the runs with the same --seed and different --order-seed")


def average_models(folders: Sequence[Path], out_dir: Path) -> ModelMeta:
    """Write the weight-averaged model of ``folders`` to ``out_dir``; returns its meta."""
    if len(folders) < 2:
        raise UsageError("give at least two model folders to average")
    loaded = [load_model(Path(f)) for f in folders]
    metas = [meta for _, _, meta in loaded]
    check_compatible([Path(f) for f in folders], metas)
    net, tokenizer, first = loaded[0]
    states = [n.state_dict() for n, _, _ in loaded]
    with torch.no_grad():
        net.load_state_dict({k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0]})
    meta = copy.deepcopy(first)
    if first.crf is not None:
        meta.crf = {layer: {key: np.mean([np.asarray(m.crf[layer][key], dtype=np.float64) for m in metas], axis=0)
                            .round(5).tolist() for key in first.crf[layer]} for layer in first.crf}
    meta.training = {
        "averaged_from": [{"folder": Path(f).name, **{k: m.training.get(k) for k in
                                                      ("data", "notes", "train_fingerprint", "date", "seconds")},
                           "order_seed": m.training.get("config", {}).get("order_seed")}
                          for f, m in zip(folders, metas)],
        "config": first.training.get("config", {}),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.dev_metrics = {}  # each run's dev figures are not the average's
    save_model(net, tokenizer, meta, Path(out_dir))
    return meta
