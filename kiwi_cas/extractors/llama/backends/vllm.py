"""The vLLM backend: one generate call for all prompts, prefix caching for the shared instruction.

Constrained decoding uses vLLM's structured output with a regular expression that admits
exactly the source text with tags inserted between tokens. vLLM loads full model folders,
so a LoRA adapter is merged into its base once and the merged folder cached.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Sequence

from kiwi_cas.extractors.llama.backends import GenRequest, GenStats, ModelSource, max_new_tokens
from kiwi_cas.extractors.settings import models_home


class VllmBackend:
    """vLLM on a GPU: one generate call for all prompts, prefix caching for the shared instruction.

    Constrained decoding uses vLLM's structured output with a regular expression that
    admits exactly the source text with tags inserted between characters.
    """

    def __init__(self, source: ModelSource, batch_size: int = 0, max_model_len: int = 4096,
                 gpu_memory_utilization: float = 0.85) -> None:
        """``batch_size`` is not used: vLLM schedules all prompts of a call itself."""
        from vllm import LLM  # imported only when this backend is used

        import torch

        model_dir = merged_folder(source.base, source.adapter) if source.adapter else source.base
        # on CPU, float32 as the transformers backend (and CPU training) computes: vLLM's default there
        # is the config's bfloat16, whose rounding changed a greedy choice on the example notes
        dtype = "auto" if torch.cuda.is_available() else "float32"
        self.llm = LLM(model=str(model_dir), enable_prefix_caching=True, max_model_len=max_model_len,
                       gpu_memory_utilization=gpu_memory_utilization, seed=0, dtype=dtype)
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
    lead = ""
    if source.startswith(" "):
        lead, source = " ?", source[1:]
    opening = "|".join(_escape(f'<span class="{label}">') for label in labels)
    tag = f"(?:{opening}|</span>)?" if labels else ""
    parts = re.findall(r"\w+|\s+|[^\w\s]", source)
    return lead + tag + tag.join(_escape(p) for p in parts) + tag


#: whitespace written as regex escapes every engine knows (re.escape writes "\ " for a space, which
#: xgrammar accepts only with a warning per occurrence)
_WHITESPACE = {" ": " ", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\v": "\\v"}


def _escape(text: str) -> str:
    """``re.escape`` with whitespace as plain or standard escapes."""
    return "".join(_WHITESPACE.get(ch) or re.escape(ch) for ch in text)


def merged_folder(base: Path, adapter: Path) -> Path:
    """A full model folder (base + LoRA merged) for vLLM, cached beside the adapter's base."""
    target = models_home() / f"merged-{adapter.name}"
    if (target / "config.json").exists():
        return target
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.save_pretrained(target, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(target)
    return target
