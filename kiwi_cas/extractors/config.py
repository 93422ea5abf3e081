"""Typed, validated settings for each extractor. Plain dataclasses: cheap to import, to pickle to a
worker process, and to build from command-line options, a service request or Python code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from kiwi_cas.errors import UsageError
from kiwi_cas.extractors.bert.runtime import PRECISIONS, RUNTIMES
from kiwi_cas.extractors.llama.backends import BACKEND_CHOICES
from kiwi_cas.extractors.llama.precision import PRECISIONS as LLAMA_PRECISIONS


#: every value ``--precision`` takes, whichever extractor (each config checks its own)
ALL_PRECISIONS: tuple[str, ...] = tuple(sorted({p for ps in (*PRECISIONS.values(), LLAMA_PRECISIONS) for p in ps}))


def _check(value, allowed, option: str) -> None:
    if value not in allowed:
        raise UsageError(f"{option} must be one of {', '.join(map(str, allowed))}, not {value!r}")


@dataclass(frozen=True)
class BertConfig:
    """``--extractor bert``: the fine-tuned encoder (the embedded default)."""

    name: ClassVar[str] = "bert"
    model: Path | None = None  # None: the embedded default
    runtime: str = "onnx"  # onnx (default: fp32, batch-invariant) | torch | openvino (fp32, the same graphs)
    precision: str | None = None  # None: the runtime's default (fp32); torch also has int8
    threads: int | None = None

    def __post_init__(self) -> None:
        _check(self.runtime, tuple(RUNTIMES), "--runtime")
        if self.precision is None:
            object.__setattr__(self, "precision", PRECISIONS[self.runtime][0])
        _check(self.precision, PRECISIONS[self.runtime], f"--precision (runtime {self.runtime})")


@dataclass(frozen=True)
class LlamaConfig:
    """``--extractor llama``: an instruction-tuned causal LM that rewrites sentences with span tags."""

    name: ClassVar[str] = "llama"
    model: Path | None = None  # None: the embedded default (a LoRA adapter on SmolLM2-135M-Instruct)
    backend: str = "auto"  # auto | transformers | vllm
    constrained: bool = True  # output = input text with tags inserted
    batch_size: int = 32  # prompts decoded together (transformers)
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    threads: int | None = None

    def __post_init__(self) -> None:
        _check(self.backend, BACKEND_CHOICES, "--backend")
        _check(self.precision, LLAMA_PRECISIONS, "--precision (extractor llama)")
        if self.batch_size < 1:
            raise UsageError("the generation batch size must be at least 1")


ExtractorConfig = BertConfig | LlamaConfig
