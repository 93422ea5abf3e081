"""The transformers backend: batched greedy generation with KV cache on CPU or GPU; constrained
decoding through a logits processor that walks a vocabulary trie."""

from __future__ import annotations

import time
from typing import Sequence

from kiwi_cas.extractors.llama.backends import GenRequest, GenStats, ModelSource, max_new_tokens
from kiwi_cas.extractors.settings import quiet_transformers


class TransformersBackend:
    """Batched greedy generation with KV cache; constrained decoding through a logits processor."""

    def __init__(self, source: ModelSource, batch_size: int = 16, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_transformers()
        model_dir, adapter_dir = source.base, source.adapter
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
