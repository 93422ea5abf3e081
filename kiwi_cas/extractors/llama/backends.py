"""Generation backends: transformers (CPU or GPU) and vLLM (GPU). Greedy, deterministic, batched.

Both take prompts and, when constrained, the source text each output must reproduce
with tags inserted (plus the tag labels allowed), and return the generated strings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class GenRequest:
    prompt: str
    source: str  # the text the output must reproduce (tags aside)
    labels: tuple[str, ...]  # tag classes the output may insert


@dataclass
class GenStats:
    prompts: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0


class Backend(Protocol):
    stats: GenStats

    def generate(self, requests: Sequence[GenRequest], constrained: bool) -> list[str]:
        ...


def max_new_tokens(tokenizer, source: str, labels: Sequence[str]) -> int:
    n = len(tokenizer(source, add_special_tokens=False)["input_ids"])
    return int(n * 1.5) + 12 * min(8, max(1, len(labels))) + 8


class TransformersBackend:
    """Batched greedy generation with KV cache; constrained decoding through a logits processor."""

    def __init__(self, model_dir: Path, adapter_dir: Path | None = None, batch_size: int = 16,
                 device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        if adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size
        self.stats = GenStats()
        self._trie = None

    @property
    def trie(self):
        if self._trie is None:
            from kiwi_cas.extractors.llama.constrained import TokenTrie

            self._trie = TokenTrie(self.tokenizer)
        return self._trie

    def generate(self, requests: Sequence[GenRequest], constrained: bool) -> list[str]:
        import time

        from transformers import LogitsProcessorList

        from kiwi_cas.extractors.llama.constrained import TagConstraint, TagGrammar

        t0 = time.perf_counter()
        out: list[str | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: len(requests[i].prompt))
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            batch = [requests[i] for i in idx]
            enc = self.tokenizer([r.prompt for r in batch], return_tensors="pt", padding=True,
                                 add_special_tokens=False).to(self.device)
            limit = max(max_new_tokens(self.tokenizer, r.source, r.labels) for r in batch)
            processors = LogitsProcessorList()
            if constrained:
                processors.append(TagConstraint(self.trie, [r.source for r in batch],
                                                [TagGrammar(r.labels) for r in batch], enc["input_ids"].shape[1],
                                                self.tokenizer.eos_token_id))
            with self.torch.inference_mode():
                gen = self.model.generate(**enc, max_new_tokens=limit, do_sample=False, num_beams=1,
                                          logits_processor=processors, pad_token_id=self.tokenizer.pad_token_id,
                                          eos_token_id=self.tokenizer.eos_token_id)
            new = gen[:, enc["input_ids"].shape[1]:]
            for row, i in enumerate(idx):
                ids = [t for t in new[row].tolist() if t not in (self.tokenizer.pad_token_id,
                                                                  self.tokenizer.eos_token_id)]
                self.stats.generated_tokens += len(ids)
                out[i] = self.tokenizer.decode(ids, skip_special_tokens=True)
        self.stats.prompts += len(requests)
        self.stats.seconds += time.perf_counter() - t0
        return [o or "" for o in out]


class VllmBackend:
    """vLLM on a GPU: one generate call for all prompts, prefix caching for the shared instruction.

    Constrained decoding uses vLLM's structured output with a regular expression that
    admits exactly the source text with tags inserted between characters.
    """

    def __init__(self, model_dir: Path, max_model_len: int = 4096, gpu_memory_utilization: float = 0.85) -> None:
        from vllm import LLM  # imported only when this backend is used

        self.llm = LLM(model=str(model_dir), enable_prefix_caching=True, max_model_len=max_model_len,
                       gpu_memory_utilization=gpu_memory_utilization, seed=0)
        self.tokenizer = self.llm.get_tokenizer()
        self.stats = GenStats()

    def _params(self, req: GenRequest, constrained: bool):
        from vllm import SamplingParams

        kwargs = dict(temperature=0.0, max_tokens=max_new_tokens(self.tokenizer, req.source, req.labels),
                      stop=["<EOS>"])
        if constrained:
            regex = source_regex(req.source, req.labels)
            try:
                from vllm.sampling_params import StructuredOutputsParams

                kwargs["structured_outputs"] = StructuredOutputsParams(regex=regex)
            except ImportError:  # older vLLM
                from vllm.sampling_params import GuidedDecodingParams

                kwargs["guided_decoding"] = GuidedDecodingParams(regex=regex)
        return SamplingParams(**kwargs)

    def generate(self, requests: Sequence[GenRequest], constrained: bool) -> list[str]:
        import time

        t0 = time.perf_counter()
        params = [self._params(r, constrained) for r in requests]
        results = self.llm.generate([r.prompt for r in requests], params, use_tqdm=False)
        texts = [r.outputs[0].text for r in results]
        self.stats.prompts += len(requests)
        self.stats.generated_tokens += sum(len(r.outputs[0].token_ids) for r in results)
        self.stats.seconds += time.perf_counter() - t0
        return texts


def source_regex(source: str, labels: Sequence[str]) -> str:
    """Regex for ``source`` with optional open/close tags between tokens (vLLM structured output).

    A leading space (the gap after the prompt) is optional.
    """
    import re

    lead = ""
    if source.startswith(" "):
        lead, source = " ?", source[1:]
    opening = "|".join(re.escape(f'<span class="{label}">') for label in labels)
    tag = f"(?:{opening}|</span>)?" if labels else ""
    parts = re.findall(r"\w+|\s+|[^\w\s]", source)
    return lead + tag + tag.join(re.escape(p) for p in parts) + tag


def cuda_and_vllm() -> bool:
    import importlib.util

    try:
        import torch

        return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None
    except ImportError:
        return False
