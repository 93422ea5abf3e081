"""The transformers backend: batched greedy generation on CPU or GPU that drafts the source text
(see ``drafting``), constrained to the source plus tags (see ``constrained``)."""

from __future__ import annotations

import time
from typing import Sequence

from kiwi_cas.extractors.llama.backends import GenRequest, GenStats, ModelSource, load_merged, max_new_tokens
from kiwi_cas.extractors.llama.drafting import DraftDecoder
from kiwi_cas.extractors.settings import quiet_transformers


class TransformersBackend:
    """Batched greedy generation with source drafts and a shared-prefix KV cache."""

    def __init__(self, source: ModelSource, batch_size: int = 32, device: str | None = None,
                 draft_tokens: int = 4) -> None:
        import torch
        from transformers import AutoTokenizer

        quiet_transformers()
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(source.base)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_merged(source, dtype).to(self.device).eval()
        self.batch_size = batch_size
        self.stats = GenStats()
        self.decoder = DraftDecoder(self.model, self.tokenizer, self.stats, draft_tokens)
        self._trie = None

    @property
    def trie(self):
        if self._trie is None:
            from kiwi_cas.extractors.llama.constrained import TokenTrie

            self._trie = TokenTrie(self.tokenizer)
        return self._trie

    def generate(self, requests: Sequence[GenRequest], constrained: bool) -> list[str]:
        from kiwi_cas.extractors.llama.constrained import TagFollower, TagGrammar
        from kiwi_cas.extractors.llama.drafting import Row

        t0 = time.perf_counter()
        rows = [Row(self.tokenizer(r.prompt, add_special_tokens=False)["input_ids"],
                    TagFollower(self.trie, r.source, TagGrammar(r.labels, r.attributes, r.forced), self.tokenizer.eos_token_id,
                                constrained),
                    max_new_tokens(self.tokenizer, r)) for r in requests]
        # one instruction per batch (its prefix is computed once), similar lengths (little padding)
        order = sorted(range(len(requests)), key=lambda i: (instruction(requests[i]), len(rows[i].prompt)))
        with self.torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                self.decoder.decode([rows[i] for i in order[b:b + self.batch_size]])
        self.stats.prompts += len(requests)
        self.stats.generated_tokens += sum(len(r.out) for r in rows)
        self.stats.seconds += time.perf_counter() - t0
        return [self.tokenizer.decode(r.out, skip_special_tokens=True) for r in rows]


def instruction(request: GenRequest) -> str:
    """The prompt text before the sentence: requests that share it share a batch and its cached prefix."""
    cut = request.prompt.find(request.source.strip()[:24])
    return request.prompt[:cut] if cut > 0 else ""
