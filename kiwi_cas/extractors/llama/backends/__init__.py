"""Generation backends for the LLaMA extractor, by name. Greedy, deterministic, batched.

Every backend takes prompts and, when constrained, the source text each output must
reproduce with tags inserted (plus the tag labels allowed), and returns the generated
strings. A backend gets a :class:`ModelSource` (a full model folder, optionally with a LoRA
adapter) and decides itself how to apply the adapter. A new backend is a module here plus
one line in :data:`BACKENDS`.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from kiwi_cas.errors import SetupError


@dataclass
class GenRequest:
    prompt: str
    source: str  # the text the output must reproduce (tags aside)
    labels: tuple[str, ...]  # tag classes the output may insert
    attributes: dict[str, tuple[str, ...]] | None = None  # joint format: tag class -> modifier attributes allowed
    forced: tuple[tuple[int, int, str], ...] | None = None  # joint format, entities given: the only tags, in source offsets


@dataclass
class GenStats:
    prompts: int = 0
    generated_tokens: int = 0
    forward_passes: int = 0  # where the backend counts them
    positions: int = 0  # token positions run through the decoder, padding and rejected drafts included
    seconds: float = 0.0


@dataclass(frozen=True)
class ModelSource:
    """What to load: a full causal-LM folder, and a LoRA adapter folder to apply on top (or None)."""

    base: Path
    adapter: Path | None = None


class Backend(Protocol):
    stats: GenStats
    precision: str  # what it computes in, resolved: fp32 | bf16

    def generate(self, requests: Sequence[GenRequest], constrained: bool) -> list[str]:
        ...


def max_new_tokens(tokenizer, request: GenRequest) -> int:
    """A bound on the answer's length: the source, its tags and (joint format) their attributes."""
    n = len(tokenizer(request.source, add_special_tokens=False)["input_ids"])
    if request.attributes:
        return 5 * n + 64
    return 3 * n + 12 * min(8, max(1, len(request.labels))) + 8



def load_merged(source: ModelSource, dtype):
    """The causal LM of ``source`` with its LoRA adapter (if any) merged in, in ``dtype``."""
    from transformers import AutoModelForCausalLM

    from kiwi_cas.extractors.settings import peft_quietly

    model = AutoModelForCausalLM.from_pretrained(source.base, dtype=dtype)
    if source.adapter is None:
        return model
    from peft import PeftModel

    with peft_quietly():
        return PeftModel.from_pretrained(model, source.adapter).merge_and_unload()

#: backend name -> "module:class"; each class takes a ModelSource
BACKENDS: dict[str, str] = {
    "transformers": "kiwi_cas.extractors.llama.backends.transformers:TransformersBackend",
    "vllm": "kiwi_cas.extractors.llama.backends.vllm:VllmBackend",
}
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKENDS)


def cuda_and_vllm() -> bool:
    try:
        import torch

        return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None
    except ImportError:
        return False


def resolve_backend(name: str) -> str:
    """``auto`` picks vLLM where CUDA and vllm exist, else transformers."""
    if name == "auto":
        return "vllm" if cuda_and_vllm() else "transformers"
    return name


def load_backend(name: str, source: ModelSource, batch_size: int = 32, precision: str = "auto") -> Backend:
    name = resolve_backend(name)
    module, cls = BACKENDS[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise SetupError(f"the {name} backend needs a package this environment lacks ({exc.name}): "
                         f"pip install 'kiwi_cas[{name}]'") from exc
    return getattr(mod, cls)(source, batch_size=batch_size, precision=precision)
