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
    relation_threshold: float = 0.5
    rel_dim: int = 256
    training: dict = field(default_factory=dict)
    dev_metrics: dict = field(default_factory=dict)


def read_meta(model_dir: Path) -> ModelMeta:
    meta_path = Path(model_dir) / META_FILE
    if not meta_path.exists():
        raise ModelNotFoundError(f"{model_dir}: not a kiwi_cas BERT model folder (no {META_FILE})")
    return ModelMeta(**json.loads(meta_path.read_text()))
