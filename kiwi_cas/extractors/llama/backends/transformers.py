"""The transformers backend: batched greedy generation on CPU or GPU that drafts the source text
(see ``drafting``), constrained to the source plus tags (see ``constrained``)."""

from __future__ import annotations

import logging
import time
from typing import Sequence

from kiwi_cas.extractors.llama.backends import GenRequest, GenStats, ModelSource, load_merged, max_new_tokens
from kiwi_cas.extractors.llama.attention import use_gqa_sdpa
from kiwi_cas.extractors.llama.constrained import TagFollower, TagGrammar, TokenTrie
from kiwi_cas.extractors.llama.drafting import DraftDecoder, Row
from kiwi_cas.extractors.llama.padding import skip_padding
from kiwi_cas.extractors.llama.precision import resolve_precision
from kiwi_cas.extractors.settings import quiet_transformers


class TransformersBackend:
    """Batched greedy generation with source drafts and a shared-prefix KV cache."""

    def __init__(self, source: ModelSource, batch_size: int = 32, precision: str = "auto", device: str | None = None,
                 draft_tokens: int = 4) -> None:
        import torch
        from transformers import AutoTokenizer

        quiet_transformers()
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = resolve_precision(precision, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(source.base)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # the adapter is merged in float32; on CPU only the matrix products then go bfloat16 (see bf16)
        on_gpu_bf16 = self.device == "cuda" and self.precision == "bf16"
        model = load_merged(source, torch.bfloat16 if on_gpu_bf16 else torch.float32)
        if self.precision == "bf16" and not on_gpu_bf16:
            from kiwi_cas.extractors.llama.bf16 import SLOW_CPU_NOTE, slow_on_this_cpu, with_bf16_products

            if slow_on_this_cpu():  # one line on stderr (logging's last-resort handler when none is set up)
                logging.getLogger("kiwi_cas.llama").warning(SLOW_CPU_NOTE)
            model = with_bf16_products(model)
        self.model = model.to(self.device).eval()
        if self.device == "cpu":  # on CUDA, SDPA with a mask and shared heads could fall back to its slow kernel
            use_gqa_sdpa(self.model)
        self.batch_size = batch_size
        self.stats = GenStats()
        self.decoder = DraftDecoder(self.model, self.tokenizer, self.stats, draft_tokens, skip_padding(self.model))
        self.trie = TokenTrie(self.tokenizer)  # built at load (~0.6 s), not inside the first note's time

    def generate(self, requests: Sequence[GenRequest], constrained: bool) -> list[str]:
        t0 = time.perf_counter()
        rows = [Row(self.tokenizer(r.prompt, add_special_tokens=False)["input_ids"],
                    TagFollower(self.trie, r.source, TagGrammar(r.labels, r.attributes, r.forced), self.tokenizer.eos_token_id,
                                constrained),
                    max_new_tokens(self.tokenizer, r)) for r in requests]
        # one instruction per group (its prefix is computed once); longest prompts first, so that the
        # longest answers start early and the rows joining later pad little
        groups: dict[str, list] = {}
        for i in sorted(range(len(requests)), key=lambda i: -len(rows[i].prompt)):
            groups.setdefault(instruction(requests[i]), []).append(rows[i])
        with self.torch.inference_mode():
            for group in groups.values():
                self.decoder.decode(group, self.batch_size)
        self.stats.prompts += len(requests)
        self.stats.generated_tokens += sum(len(r.out) for r in rows)
        self.stats.seconds += time.perf_counter() - t0
        return [self.tokenizer.decode(r.out, skip_special_tokens=True) for r in rows]


def instruction(request: GenRequest) -> str:
    """The prompt text before the sentence: requests that share it share a batch and its cached prefix."""
    cut = request.prompt.find(request.source.strip()[:24])
    return request.prompt[:cut] if cut > 0 else ""
