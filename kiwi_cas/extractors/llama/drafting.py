"""Greedy decoding that uses the source text as its draft (speculative decoding without a draft model).

A Kiwi answer is the input sentence again with tags inserted, so the next tokens are almost
always the next tokens of the sentence. Each step feeds, per row, the token just chosen plus up
to ``draft_tokens`` guesses (the rest of a half-written tag, then the tokenized rest of the
source) and keeps the longest run of guesses that greedy decoding picks itself; the positions
of rejected guesses stay in the KV cache but are masked out. The output is what plain greedy
decoding would write, in a fraction of the forward passes. Rows share their common prompt
prefix (the instruction), which is computed once and repeated. Rows join the running batch as
others finish (continuous batching), prefilled in runs of similar prompt length; finished rows
stay in the batch, idle, until enough of them are done to be worth a copy of the cache.

Only the decoder stack runs over every prompt position; the output head (in the LLaMA family
a plain projection of the final hidden state) runs on each prompt's last token and on the real
(not padding) positions fed while decoding, which saves most of the head's cost in the prompt
pass. Where the constraint lists what a position may choose (everywhere but inside attribute
values), the head scores only those tokens (``_greedy``). The MLPs skip padding too (``padding``).
"""

from __future__ import annotations

import inspect
import itertools
import os
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from kiwi_cas.extractors.llama.backends import GenStats
from kiwi_cas.extractors.llama.constrained import TagFollower
from kiwi_cas.extractors.llama.kv_cache import joined, kept_positions, layer_tensors, new_cache, repeated
from kiwi_cas.extractors.llama.padding import RealPositions


def cache_keyword(module) -> str:
    """The name ``module.forward`` takes the KV cache under: transformers 5 renamed ``past_key_values``
    to ``cache`` (the old name prints a FutureWarning on every run, and goes in 5.40); 4.x knows only the old one."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


#: share of a batch's rows that are done before they are removed (1/2, 1/4, 1/8, 1/16 on 4 dev notes:
#: 20.5-21.3, 19.3-19.9, 19.0-19.4, 19.3-19.4 s; removing each at once: 21.8-22.2 s)
DONE_SHARE = 1 / 8


@dataclass
class Row:
    """One prompt being answered."""

    prompt: list[int]
    follower: TagFollower
    limit: int  # most tokens to generate
    out: list[int] = field(default_factory=list)
    pending: int = -1  # the token picked but not yet fed
    done: bool = False  # answered; stays in its batch, idle, until enough rows are done (``_without_finished``)


class DraftDecoder:
    def __init__(self, model, tokenizer, stats: GenStats, draft_tokens: int = 4,
                 real: RealPositions | None = None) -> None:
        """``real``: from ``padding.skip_padding(model)``, to leave padded positions out of the products."""
        self.model, self.tokenizer, self.stats = model, tokenizer, stats
        self.real = real
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
        """The decoder's last hidden states for ``ids`` (the last ``ids.shape[1]`` columns of ``mask``)."""
        self.stats.forward_passes += 1
        self.stats.positions += ids.numel()
        with self.real.only(mask[:, -ids.shape[1]:]) if self.real else nullcontext():
            return self.decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                **{self.cache_keyword: cache}).last_hidden_state

    def _draft(self, row: Row) -> list[int]:
        text = row.follower.draft()
        if not text or row.limit - len(row.out) <= 0:
            return []
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[:min(self.draft_tokens, row.limit - len(row.out))]

    def decode(self, rows: list[Row], batch_size: int) -> None:
        """Fill each row's ``out`` with its greedy answer (EOS not included), ``batch_size`` rows at a time.

        Rows join as others finish: whenever no more than half a batch is still generating, the next
        waiting rows are prefilled and merged into the running batch (continuous batching). Without
        it a batch's last long answers ran on alone, each forward pass reading all the weights for a
        row or two.
        """
        device = self.head.weight.device
        queue = list(rows)
        # the shared prefix, once; every row keeps at least one prompt token of its own
        shared = min(len(os.path.commonprefix([r.prompt for r in rows])), min(len(r.prompt) for r in rows) - 1)
        prefix = []
        if shared > 0:
            cache = new_cache([])
            self._run(torch.tensor([rows[0].prompt[:shared]], device=device),
                      torch.ones(1, shared, dtype=torch.long, device=device),
                      torch.arange(shared, device=device)[None], cache)
            prefix = layer_tensors(cache)
        batch = Batch([], None, torch.zeros((0, 0), dtype=torch.long, device=device),
                      torch.zeros(0, dtype=torch.long, device=device))
        while True:
            while queue and sum(not r.done for r in batch.rows) <= batch_size // 2:
                batch = self._without_done(batch)
                admitted, queue = queue[:batch_size - len(batch.rows)], queue[batch_size - len(batch.rows):]
                for similar in similar_lengths(admitted, shared):
                    batch = self._join(batch, self._prefill(similar, prefix, shared))
            if all(r.done for r in batch.rows):
                return
            self._step(batch)
            batch = self._without_finished(batch)

    def _prefill(self, rows: list[Row], prefix: list[tuple[torch.Tensor, torch.Tensor]], shared: int) -> "Batch":
        """A batch of ``rows`` with their prompts read (after the shared prefix) and first tokens taken."""
        device = self.head.weight.device
        n = len(rows)
        suffix = [r.prompt[shared:] for r in rows]
        ids, step_mask = self._right_padded(suffix, device)
        cache = repeated(prefix, n, extra=ids.shape[1])
        mask = torch.cat([torch.ones((n, shared), dtype=torch.long, device=device), step_mask], 1)
        positions = shared + torch.arange(ids.shape[1], device=device)[None].expand(n, -1)
        hidden = self._run(ids, mask, positions, cache)
        last = torch.tensor([len(s) - 1 for s in suffix], device=device)
        greedy = self._greedy(hidden[torch.arange(n, device=device), last], [r.follower.choices(r.follower.states)
                                                                             for r in rows])
        for r, g in zip(rows, greedy):
            r.pending = self._pick(r, g)
        batch = Batch(rows, cache, mask, torch.tensor([len(r.prompt) for r in rows], device=device))
        return self._without_finished(batch)

    def _without_finished(self, batch: "Batch") -> "Batch":
        """Each row's pending token taken; rows that chose EOS or reached their limit are done. Done rows
        stay in the batch, idle (fed one masked padding position per step), until ``DONE_SHARE`` of it is done:
        removing rows copies the whole cache, and some row finishes at nearly every step."""
        for r in batch.rows:
            if r.done:
                continue
            if r.pending == self.eos_id or len(r.out) >= r.limit:
                r.done = True
                continue
            r.out.append(r.pending)
            r.follower.push(r.pending)
        done = sum(r.done for r in batch.rows)
        return self._without_done(batch) if done >= DONE_SHARE * len(batch.rows) else batch

    def _without_done(self, batch: "Batch") -> "Batch":
        """The batch without its done rows (their cache rows and the positions no one attends to any more)."""
        keep = [j for j, r in enumerate(batch.rows) if not r.done]
        if len(keep) == len(batch.rows):
            return batch
        index = torch.tensor(keep, dtype=torch.long, device=batch.mask.device)
        if not keep:
            return Batch([], None, batch.mask[index], batch.next_pos[index])
        batch.cache.batch_select_indices(index)
        return self._compacted(Batch([batch.rows[j] for j in keep], batch.cache, batch.mask[index],
                                     batch.next_pos[index]))

    def _compacted(self, batch: "Batch") -> "Batch":
        """The batch without the cache positions no row attends to any more (those of rows gone,
        holes): in a long run rows keep joining, and the cache would otherwise only grow. Keys
        carry their rotary positions, so dropping positions changes nothing else."""
        used = batch.mask.any(0)
        if int(used.sum()) > 0.75 * used.numel():
            return batch
        index = used.nonzero().squeeze(1)
        return Batch(batch.rows, kept_positions(batch.cache, index), batch.mask[:, index], batch.next_pos)

    def _join(self, a: "Batch", b: "Batch") -> "Batch":
        """One batch of both: the shorter cache is padded with masked holes to the longer one's width."""
        if not a.rows:
            return b
        if not b.rows:
            return a
        width = max(a.mask.shape[1], b.mask.shape[1])
        masks = [torch.nn.functional.pad(m, (0, width - m.shape[1])) for m in (a.mask, b.mask)]
        return Batch(a.rows + b.rows, joined(a.cache, b.cache, width), torch.cat(masks),
                     torch.cat([a.next_pos, b.next_pos]))

    def _step(self, batch: "Batch") -> None:
        """One forward pass: each row's last token and its draft; the longest greedy-confirmed run of the
        draft is taken, the rest masked out, and the next token picked (``pending``)."""
        device = batch.mask.device
        drafts = [[] if r.done else self._draft(r) for r in batch.rows]
        fed = [[] if r.done else [r.out[-1], *d] for r, d in zip(batch.rows, drafts)]  # done: all padding
        ids, step_mask = self._right_padded(fed, device)
        width = ids.shape[1]
        batch.mask = torch.cat([batch.mask, step_mask], 1)
        positions = batch.next_pos[:, None] + torch.arange(width, device=device)[None]
        hidden = self._run(ids, batch.mask, positions, batch.cache)
        # what each real position may choose, were the guesses before it taken (row after row)
        at = [(r, s) for r, guesses in zip(batch.rows, drafts) if not r.done
              for s in itertools.accumulate(guesses, r.follower.after, initial=r.follower.states)]
        states = [s for _, s in at]
        greedy = self._greedy(hidden[step_mask.bool()], [r.follower.choices(s) for r, s in at])
        starts = [0, *itertools.accumulate(map(len, fed))]  # each row's first position in ``greedy``
        base = batch.mask.shape[1] - width
        for j, (r, guesses) in enumerate(zip(batch.rows, drafts)):
            if r.done:  # fed nothing real: its position is masked, and it keeps its next position
                continue
            taken = 0
            for guess in guesses:
                if self._pick(r, greedy[starts[j] + taken]) != guess:
                    break
                r.out.append(guess)
                r.follower.states = states[starts[j] + taken + 1]
                taken += 1
            r.pending = self._pick(r, greedy[starts[j] + taken])
            batch.mask[j, base + 1 + taken:] = 0
            batch.next_pos[j] += 1 + taken

    @staticmethod
    def _pick(row: Row, greedy: "int | torch.Tensor") -> int:
        """The token ``_greedy`` chose, or the one ``pick`` chooses from its whole logits."""
        return greedy if isinstance(greedy, int) else row.follower.pick(greedy)

    def _greedy(self, hidden: torch.Tensor, choices: list[list[int] | None]) -> "list[int | torch.Tensor]":
        """Per position of ``hidden`` (final hidden states): greedy's token where ``choices`` lists
        what it may be, else the logits over the whole vocabulary (for ``TagFollower.pick``).

        The output head scores only the union of the listed tokens (a few hundred of the
        vocabulary's 49,152): outside attribute values a position may only copy the source's next
        characters or open or close a tag. Scoring the whole vocabulary had cost 7.6 of 98 s on the
        16 dev notes.
        """
        out: "list[int | torch.Tensor | None]" = [None] * len(choices)
        listed = [p for p, c in enumerate(choices) if c is not None]
        if listed:
            union = sorted({t for p in listed for t in choices[p]})
            column = {t: i for i, t in enumerate(union)}
            index = torch.tensor(union, device=hidden.device)
            bias = None if self.head.bias is None else self.head.bias.index_select(0, index)
            scores = torch.nn.functional.linear(hidden[listed], self.head.weight.index_select(0, index), bias).float()
            barred = torch.ones_like(scores, dtype=torch.bool)
            barred[[i for i, p in enumerate(listed) for _ in choices[p]],
                   [column[t] for p in listed for t in choices[p]]] = False
            for p, best in zip(listed, scores.masked_fill_(barred, float("-inf")).argmax(1).tolist()):
                out[p] = union[best]
        whole = [p for p, c in enumerate(choices) if c is None]
        if whole:
            for p, logits in zip(whole, self.head(hidden[whole]).float()):
                out[p] = logits
        return out


@dataclass
class Batch:
    """Rows decoding together: their KV cache, which cache positions each row attends to (``mask``;
    0 for padding, rejected guesses and the holes of a joined batch), and each row's next position."""

    rows: list[Row]
    cache: object  # a transformers Cache from ``kv_cache.new_cache`` (None while empty)
    mask: torch.Tensor
    next_pos: torch.Tensor


def similar_lengths(rows: list[Row], shared: int, padding: float = 0.2) -> list[list[Row]]:
    """``rows`` (longest prompt first) cut into runs that each pad no more than ``padding`` of the prompt
    positions they read after the ``shared`` prefix: one prefill pass per run, since a pass computes
    every row to its longest prompt."""
    runs: list[list[Row]] = []
    width = real = 0
    for row in rows:
        length = len(row.prompt) - shared
        if runs and (real + length) >= (1 - padding) * width * (len(runs[-1]) + 1):
            runs[-1].append(row)
            real += length
        else:
            runs.append([row])
            width = real = length
    return runs
