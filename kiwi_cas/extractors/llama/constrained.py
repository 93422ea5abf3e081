"""Constrained decoding: the output can only be the input text with span tags inserted.

A small automaton tracks, per sequence, how much of the source text has been written and
whether a tag is open or half-written. Allowed next tokens are found by walking a trie of
the vocabulary's token strings together with the automaton, so only tokens that keep the
output a valid "source + tags" prefix survive. Hallucinated words become impossible, and
EOS is allowed only once the whole source has been written with every tag closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

State = tuple[int, bool, str]  # (source chars written, a span is open, partial tag text)


class TokenTrie:
    """Trie over decoded token strings; built once per tokenizer."""

    def __init__(self, tokenizer) -> None:
        self.root: dict = {}
        self.strings: dict[int, str] = {}
        for tid in range(len(tokenizer)):
            s = tokenizer.decode([tid], clean_up_tokenization_spaces=False)
            if not s or "\ufffd" in s or tid in tokenizer.all_special_ids:
                continue
            self.strings[tid] = s
            node = self.root
            for ch in s:
                node = node.setdefault(ch, {})
            node.setdefault(None, []).append(tid)


@dataclass
class TagGrammar:
    """The tag strings one sequence may insert."""

    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        self.open_tags = {f'<span class="{label}">' for label in self.labels}
        self.close_tag = "</span>"
        self.open_prefixes = {t[:i] for t in self.open_tags for i in range(1, len(t) + 1)}
        self.close_prefixes = {self.close_tag[:i] for i in range(1, len(self.close_tag) + 1)}


def step(state: State, ch: str, source: str, grammar: TagGrammar) -> list[State]:
    """All automaton states reachable from ``state`` by writing ``ch``."""
    pos, is_open, buf = state
    out: list[State] = []
    if buf:
        cand = buf + ch
        if is_open:
            if cand == grammar.close_tag:
                out.append((pos, False, ""))
            elif cand in grammar.close_prefixes:
                out.append((pos, True, cand))
        else:
            if cand in grammar.open_tags:
                out.append((pos, True, ""))
            elif cand in grammar.open_prefixes:
                out.append((pos, False, cand))
        return out
    if pos < len(source) and source[pos] == ch:
        out.append((pos + 1, is_open, ""))
    if ch == "<" and (is_open or grammar.labels):
        out.append((pos, is_open, "<"))
    return out


def advance(states: set[State], text: str, source: str, grammar: TagGrammar) -> set[State]:
    for ch in text:
        states = {n for s in states for n in step(s, ch, source, grammar)}
        if not states:
            break
    return states


def allowed_tokens(trie: TokenTrie, states: set[State], source: str, grammar: TagGrammar) -> list[int]:
    found: list[int] = []
    stack = [(trie.root, frozenset(states))]
    while stack:
        node, sts = stack.pop()
        for ch, child in node.items():
            if ch is None:
                continue
            nxt = frozenset(n for s in sts for n in step(s, ch, source, grammar))
            if nxt:
                ids = child.get(None)
                if ids:
                    found.extend(ids)
                stack.append((child, nxt))
    return found


def finished(states: set[State], source: str) -> bool:
    return any(pos == len(source) and not is_open and not buf for pos, is_open, buf in states)


class TagConstraint:
    """A transformers LogitsProcessor over a batch; row i is constrained to sources[i] + tags."""

    def __init__(self, trie: TokenTrie, sources: list[str], grammars: list[TagGrammar], prompt_width: int,
                 eos_id: int) -> None:
        self.trie, self.sources, self.grammars = trie, sources, grammars
        self.prompt_width = prompt_width
        self.eos_id = eos_id
        # sources start with one space the model may or may not write after the prompt
        self.states: list[set[State]] = [{(0, False, ""), (1, False, "")} if src.startswith(" ") else
                                         {(0, False, "")} for src in sources]
        self.done = [False] * len(sources)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids.shape[1] - self.prompt_width
        mask = torch.full_like(scores, float("-inf"))
        for row in range(scores.shape[0]):
            if generated > 0 and not self.done[row]:
                last = int(input_ids[row, -1])
                if last == self.eos_id:
                    self.done[row] = True
                else:
                    self.states[row] = advance(self.states[row], self.trie.strings.get(last, "\ufffd"),
                                               self.sources[row], self.grammars[row])
            if self.done[row] or not self.states[row]:
                mask[row, self.eos_id] = 0.0
                continue
            ids = allowed_tokens(self.trie, self.states[row], self.sources[row], self.grammars[row])
            if finished(self.states[row], self.sources[row]) or not ids:
                ids.append(self.eos_id)
            mask[row, ids] = 0.0
        return scores + mask
