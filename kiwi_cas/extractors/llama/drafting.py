"""Greedy decoding that uses the source text as its draft (speculative decoding without a draft model).

A Kiwi answer is the input sentence again with tags inserted, so the next tokens are almost
always the next tokens of the sentence. Each step feeds, per row, the token just chosen plus up
to ``draft_tokens`` guesses (the rest of a half-written tag, then the tokenized rest of the
source) and keeps the longest run of guesses that greedy decoding picks itself; the positions
of rejected guesses stay in the KV cache but are masked out. The output is what plain greedy
decoding would write, in a fraction of the forward passes. Rows of a batch share their common
prompt prefix (the instruction), which is computed once and repeated.

Only the decoder stack runs over every prompt position; the output head (in the LLaMA family
a plain projection of the final hidden state) runs on each prompt's last token and on the
positions fed while decoding, which saves most of the head's cost in the prompt pass.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field

import torch

from kiwi_cas.extractors.llama.backends import GenStats
from kiwi_cas.extractors.llama.constrained import TagFollower


def cache_keyword(module) -> str:
    """The name ``module.forward`` takes the KV cache under: transformers 5 renamed ``past_key_values``
    to ``cache`` (the old name prints a FutureWarning on every run, and goes in 5.40); 4.x knows only the old one."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


@dataclass
class Row:
    """One prompt being answered."""

    prompt: list[int]
    follower: TagFollower
    limit: int  # most tokens to generate
    out: list[int] = field(default_factory=list)
    pending: int = -1  # the token picked but not yet fed


class DraftDecoder:
    def __init__(self, model, tokenizer, stats: GenStats, draft_tokens: int = 4) -> None:
        self.model, self.tokenizer, self.stats = model, tokenizer, stats
        self.decoder = model.get_decoder()
        self.head = model.get_output_embeddings()
        self.draft_tokens = draft_tokens
        self.pad_id = tokenizer.pad_token_id
        self.eos_id = tokenizer.eos_token_id
        self.cache_keyword = cache_keyword(self.decoder)

    def _right_padded(self, seqs: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids padded on the right, and the mask of the real ones (padding becomes masked cache holes)."""
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(seqs), width), dtype=torch.long, device=device)
        for i, seq in enumerate(seqs):
            ids[i, :len(seq)] = torch.tensor(seq)
            mask[i, :len(seq)] = 1
        return ids, mask

    def _run(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        self.stats.forward_passes += 1
        self.stats.positions += ids.numel()
        return self.decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                            **{self.cache_keyword: cache}).last_hidden_state

    def _draft(self, row: Row) -> list[int]:
        text = row.follower.draft()
        if not text or row.limit - len(row.out) <= 0:
            return []
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[:min(self.draft_tokens, row.limit - len(row.out))]

    def decode(self, rows: list[Row]) -> None:
        """Fill each row's ``out`` with its greedy answer (EOS not included)."""
        from transformers import DynamicCache

        device = self.head.weight.device
        cache = DynamicCache()
        # the shared prefix, once; every row keeps at least one prompt token of its own
        shared = min(len(os.path.commonprefix([r.prompt for r in rows])), min(len(r.prompt) for r in rows) - 1)
        if shared > 0:
            self._run(torch.tensor([rows[0].prompt[:shared]], device=device), torch.ones(1, shared, dtype=torch.long,
                      device=device), torch.arange(shared, device=device)[None], cache)
            if len(rows) > 1:
                cache.batch_repeat_interleave(len(rows))
        # the rest of each prompt
        suffix = [r.prompt[shared:] for r in rows]
        ids, step_mask = self._right_padded(suffix, device)
        width = ids.shape[1]
        mask = torch.cat([torch.ones((len(rows), shared), dtype=torch.long, device=device), step_mask], 1)
        positions = shared + torch.arange(width, device=device)[None].expand(len(rows), -1)
        hidden = self._run(ids, mask, positions, cache)
        last = torch.tensor([len(s) - 1 for s in suffix], device=device)
        logits = self.head(hidden[torch.arange(len(rows), device=device), last]).float()
        next_pos = torch.tensor([len(r.prompt) for r in rows], device=device)
        for i, r in enumerate(rows):
            r.pending = r.follower.pick(logits[i])

        active = list(range(len(rows)))  # rows still generating, in cache batch order
        while True:
            keep = []
            for j, i in enumerate(active):
                r = rows[i]
                if r.pending == self.eos_id or len(r.out) >= r.limit:
                    continue
                r.out.append(r.pending)
                r.follower.push(r.pending)
                keep.append(j)
            if not keep:
                return
            if len(keep) < len(active):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, next_pos = mask[index], next_pos[index]
                active = [active[j] for j in keep]
            drafts = [self._draft(rows[i]) for i in active]
            ids, step_mask = self._right_padded([[rows[i].out[-1], *d] for i, d in zip(active, drafts)], device)
            width = ids.shape[1]
            mask = torch.cat([mask, step_mask], 1)
            positions = next_pos[:, None] + torch.arange(width, device=device)[None]
            logits = self.head(self._run(ids, mask, positions, cache)).float()
            base = mask.shape[1] - width
            for j, i in enumerate(active):
                r, guesses = rows[i], drafts[j]
                taken, choice = 0, None
                for guess in guesses:
                    choice = r.follower.pick(logits[j, taken])
                    if choice != guess:
                        break
                    r.out.append(guess)
                    r.follower.push(guess)
                    taken, choice = taken + 1, None
                r.pending = choice if choice is not None else r.follower.pick(logits[j, taken])
                mask[j, base + 1 + taken:] = 0
                next_pos[j] += 1 + taken
