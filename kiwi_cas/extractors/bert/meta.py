"""What a BERT model folder says about itself (``kiwi_model.json``); readable without torch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kiwi_cas.core import schema
from kiwi_cas.errors import ModelNotFoundError

META_FILE = "kiwi_model.json"


@dataclass
class ModelMeta:
    name: str
    version: str
    base_model: str
    shared_word_embeddings_from: str | None
    entity_labels: list[str] = field(default_factory=lambda: list(schema.ENTITY_LABELS))
    modifier_labels: list[str] = field(default_factory=lambda: list(schema.MODIFIER_LABELS))
    max_tokens: int = 256
    context_tokens: int = 0  # left-context tokens read before each sentence (0: none)
    # decoding rules, chosen by cross-validation on held-out folds (benchmarks/decoding.py); the
    # defaults are the plain rules, so that a model folder written before them decodes as it did
    relation_threshold: float = 0.5  # a pair whose probability reaches this is a relation
    attach_floor: float | None = None  # a modifier left with no relation joins its best entity if that reaches this
    drop_unlinked_modifiers: bool = False  # gold modifiers are almost always linked: drop the ones left alone
    entity_o_bias: float = 0.0  # added to the O tag's log-probability before Viterbi (< 0: more entities)
    modifier_o_bias: float = 0.0
    # learned tag-to-tag scores of a model trained with --crf (crf.py): {"entity"|"modifier":
    # {"start": [K], "transitions": [K][K]}}, added to the BIO rules in Viterbi; None: the rules alone
    crf: dict | None = None
    rel_dim: int = 256
    # each token's letter-case class is fed as its token type (segments.CASE_TYPES; ``train bert --case-types``)
    case_types: bool = False
    training: dict = field(default_factory=dict)
    dev_metrics: dict = field(default_factory=dict)


def read_meta(model_dir: Path) -> ModelMeta:
    meta_path = Path(model_dir) / META_FILE
    if not meta_path.exists():
        raise ModelNotFoundError(f"{model_dir}: not a kiwi_cas BERT model folder (no {META_FILE})")
    return ModelMeta(**json.loads(meta_path.read_text()))
