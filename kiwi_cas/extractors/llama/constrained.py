"""Constrained decoding: the output can only be the input text with span tags inserted.

A small automaton tracks, per sequence, how much of the source text has been written and
whether a tag is open or half-written. A token is allowed when its text keeps the output a
valid "source + tags" prefix; the allowed set, when it is needed, comes from walking a trie of
the vocabulary's token strings together with the automaton. Hallucinated words become impossible, and
EOS is allowed only once the whole source has been written with every tag closed.

Tags stand only in the gaps between the source's word parts (``PARTS``: runs of letters and
digits, runs of space, single other characters), never inside a word, and a span is never
empty: the same language as the vLLM backend's grammar. Empty and mid-word tags could only be
dropped or cut back when aligned; ruled out here, the model's next choice gets the position.

In the joint (one-pass) format an opening tag may carry attributes, one per modifier of the
entity: ``<span class="problem" negation="no" bodyloc="chest">``; only the modifier labels
allowed for that entity type are admitted as names, and a value is any text without a quote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import torch

MAX_VALUE = 60  # characters in one attribute value (a modifier's text; the longest gold one has 59)
#: tokens tried in logit order when the argmax is not allowed, before the whole allowed set is found (a
#: walk over the vocabulary, ~40 ms: it had taken 6.4 of 98 s on the 16 dev notes, inside attribute values)
RUNNERS_UP = 64
MAX_ATTRIBUTES = 8  # attributes on one tag (modifiers of one entity; 5 of 3,629 gold entities have more)

State = tuple[int, int, str]  # (source chars written, where the open span starts or -1, partial tag text)

#: a source's word parts; tags stand only between them (``tag_gaps``), here and in the vLLM grammar
PARTS = re.compile(r"\w+|\s+|[^\w\s]")


@lru_cache(maxsize=1024)
def tag_gaps(source: str) -> frozenset[int]:
    """Source offsets where a tag may stand: between word parts, after the leading space a prompt's
    source starts with (never before it), and at the end."""
    lead = 1 if source.startswith(" ") else 0
    return frozenset(m.start() for m in PARTS.finditer(source, lead)) | {len(source)}


def start_states(source: str) -> set[State]:
    """Nothing written yet; sources start with one space the model may or may not write after the prompt."""
    return {(0, -1, ""), (1, -1, "")} if source.startswith(" ") else {(0, -1, "")}


class TokenTrie:
    """Trie over decoded token strings; built once per tokenizer."""

    def __init__(self, tokenizer) -> None:
        self.root: dict = {}
        self.strings: dict[int, str] = {}
        special = set(tokenizer.all_special_ids)
        texts = tokenizer.batch_decode([[tid] for tid in range(len(tokenizer))], clean_up_tokenization_spaces=False)
        for tid, s in enumerate(texts):
            if not s or "\ufffd" in s or tid in special:
                continue
            self.strings[tid] = s
            node = self.root
            for ch in s:
                node = node.setdefault(ch, {})
            node.setdefault(None, []).append(tid)


@dataclass
class TagGrammar:
    """The tag strings one sequence may insert.

    ``attributes`` (joint format): tag label -> the attribute names its opening tag may carry.
    ``forced`` (joint format with entities given): disjoint (start, end, label) spans of the
    source; exactly these are tagged, each with its label, and no other tag is admitted.
    """

    labels: tuple[str, ...]
    attributes: dict[str, tuple[str, ...]] | None = None
    forced: tuple[tuple[int, int, str], ...] | None = None

    def __post_init__(self) -> None:
        self.open_tag_order = tuple(f'<span class="{label}">' for label in self.labels)
        self.open_tags = set(self.open_tag_order)
        self.close_tag = "</span>"
        self.open_prefixes = {t[:i] for t in self.open_tags for i in range(1, len(t) + 1)}
        self.close_prefixes = {self.close_tag[:i] for i in range(1, len(self.close_tag) + 1)}
        self._heads = {f'<span class="{label}"': label for label in self.labels}
        self._names = {label: tuple(f' {n}="' for n in (self.attributes or {}).get(label, ())) for label in self.labels}
        self._next_chars: dict[str, frozenset[str]] = {}
        self.forced_start = {s: label for s, _, label in self.forced or ()}
        self.forced_end = {e for _, e, _ in self.forced or ()}

    def next_chars(self, buf: str) -> frozenset[str]:
        """The characters that may follow a half-written tag ``buf`` (outside attribute values; a
        superset where tags are forced)."""
        if buf not in self._next_chars:
            if buf.startswith("</"):
                chars = {self.close_tag[len(buf)]} if len(buf) < len(self.close_tag) else set()
            else:
                chars = {t[len(buf)] for t in (*self._heads, self.close_tag) if t.startswith(buf) and len(t) > len(buf)}
                head = next((h for h in self._heads if buf.startswith(h)), None)
                if head is not None:
                    rest = _ATTRIBUTES.sub("", buf[len(head):], count=1)
                    names = self._names[self._heads[head]]
                    chars |= ({">"} | {n[0] for n in names}) if not rest else {
                        n[len(rest)] for n in names if n.startswith(rest) and len(n) > len(rest)}
            self._next_chars[buf] = frozenset(chars)
        return self._next_chars[buf]

    def open_tag_at(self, text: str, pos: int) -> str | None:
        """As ``open_tag``, and where tags are forced only the tag of the span starting at ``pos``."""
        if self.forced is not None:
            head = f'<span class="{self.forced_start.get(pos)}"'
            if not (text.startswith(head) or head.startswith(text)):
                return None
        return self.open_tag(text)

    def open_tag(self, text: str) -> str | None:
        """``complete`` if ``text`` is a whole opening tag, ``prefix`` if it can still become one, else None."""
        if not self.attributes:
            return "complete" if text in self.open_tags else "prefix" if text in self.open_prefixes else None
        if len(text) <= max(map(len, self._heads), default=0) and any(h.startswith(text) for h in self._heads):
            return "prefix"
        head = next((h for h in self._heads if text.startswith(h)), None)
        if head is None:
            return None
        rest, names = text[len(head):], self._names[self._heads[head]]
        for _ in range(MAX_ATTRIBUTES + 1):
            if not rest:
                return "prefix"
            if rest == ">":
                return "complete"
            name = next((n for n in names if rest.startswith(n)), None)
            if name is None:
                return "prefix" if any(n.startswith(rest) for n in names) else None
            end = rest.find('"', len(name))
            if end < 0:
                return "prefix" if "\n" not in rest and len(rest) - len(name) <= MAX_VALUE else None
            rest = rest[end + 1:]
        return None


def step(state: State, ch: str, source: str, grammar: TagGrammar) -> list[State]:
    """All automaton states reachable from ``state`` by writing ``ch``."""
    pos, opened, buf = state
    out: list[State] = []
    if buf:
        cand = buf + ch
        if opened >= 0:
            if cand == grammar.close_tag:
                out.append((pos, -1, ""))
            elif cand in grammar.close_prefixes:
                out.append((pos, opened, cand))
        else:
            kind = grammar.open_tag_at(cand, pos)
            if kind == "complete":
                out.append((pos, pos, ""))
            elif kind == "prefix":
                out.append((pos, -1, cand))
        return out
    if grammar.forced is not None:  # a tag exactly where a given span starts or ends, none elsewhere
        must_tag = (pos in grammar.forced_end) if opened >= 0 else (pos in grammar.forced_start)
        if must_tag:
            return [(pos, opened, "<")] if ch == "<" else []
        return [(pos + 1, opened, "")] if pos < len(source) and source[pos] == ch else []
    if pos < len(source) and source[pos] == ch:
        out.append((pos + 1, opened, ""))
    if ch == "<" and (grammar.labels if opened < 0 else pos > opened) and pos in tag_gaps(source):
        out.append((pos, opened, "<"))
    return out


def advance(states: set[State], text: str, source: str, grammar: TagGrammar) -> set[State]:
    for ch in text:
        states = {n for s in states for n in step(s, ch, source, grammar)}
        if not states:
            break
    return states


def allowed_tokens(trie: TokenTrie, states: set[State], source: str, grammar: TagGrammar) -> list[int]:
    """Every token the automaton allows at ``states``: a walk of the whole vocabulary trie (~40 ms)."""
    return _walk(trie, states, source, grammar, pruned=False)


def next_chars(state: State, source: str, grammar: TagGrammar) -> frozenset[str] | None:
    """The characters ``step`` may take from ``state`` (a superset: ``step`` decides), or None
    inside an attribute value, where any character but a quote goes."""
    pos, opened, buf = state
    if not buf:
        return frozenset((source[pos], "<")) if pos < len(source) else frozenset("<")
    if opened < 0 and grammar.attributes and buf.count('"') % 2 and buf.count('"') > 1:
        return None  # class="x" name="...: a value
    return grammar.next_chars(buf)


def allowed_by_walk(trie: TokenTrie, states: set[State], source: str, grammar: TagGrammar) -> list[int] | None:
    """``allowed_tokens``, walking only the trie branches the states can take, or None where a
    state is inside an attribute value (then nearly the whole vocabulary is allowed).

    Outside values a state takes one or two characters (the source's next one, ``<``) or a tag's
    own, so the walk visits a few dozen nodes instead of every first character of the vocabulary.
    """
    return _walk(trie, states, source, grammar, pruned=True)


def _walk(trie: TokenTrie, states: set[State], source: str, grammar: TagGrammar, pruned: bool) -> list[int] | None:
    """The tokens whose text the automaton takes from ``states``, depth first over the trie. ``pruned``:
    only along ``next_chars`` (every child where a state is inside a value), and None where that is
    so at the root."""
    found: list[int] = []
    stack = [(trie.root, frozenset(states))]
    while stack:
        node, sts = stack.pop()
        chars = _next_chars_of(sts, source, grammar) if pruned else None
        if pruned and chars is None and node is trie.root:
            return None
        children = node.items() if chars is None else ((ch, node[ch]) for ch in chars if ch in node)
        for ch, child in children:
            if ch is None:
                continue
            nxt = frozenset(n for s in sts for n in step(s, ch, source, grammar))
            if nxt:
                ids = child.get(None)
                if ids:
                    found.extend(ids)
                stack.append((child, nxt))
    return found


def _next_chars_of(states: frozenset[State], source: str, grammar: TagGrammar) -> set[str] | None:
    """The union of the states' ``next_chars``; None if any is None."""
    chars: set[str] = set()
    for state in states:
        c = next_chars(state, source, grammar)
        if c is None:
            return None
        chars |= c
    return chars


def finished(states: set[State], source: str) -> bool:
    return any(pos == len(source) and opened < 0 and not buf for pos, opened, buf in states)


class TagFollower:
    """Follows one output against its source: which token greedy decoding may pick next, and
    which text most likely comes next (the draft checked in the same forward pass).

    ``choices`` lists the tokens greedy decoding may pick from (the decoder then scores only
    those); where that is nearly the whole vocabulary (inside an attribute value), ``pick`` takes
    full logits and first tries the unconstrained argmax, which is allowed almost always; only
    when it is not does it walk the whole trie for the allowed set. Either way the choice is the
    same as masking every disallowed token first, at a fraction of the cost.
    """

    def __init__(self, trie: TokenTrie, source: str, grammar: TagGrammar, eos_id: int, constrained: bool) -> None:
        self.trie, self.source, self.grammar = trie, source, grammar
        self.eos_id, self.constrained = eos_id, constrained
        self.states: set[State] = start_states(source)
        self._choices: dict[frozenset[State], list[int] | None] = {}

    def push(self, token_id: int) -> None:
        self.states = self.after(self.states, token_id)

    def after(self, states: set[State], token_id: int) -> set[State]:
        """The states ``states`` lead to by writing ``token_id``."""
        return advance(states, self.trie.strings.get(token_id, "\ufffd"), self.source, self.grammar) if states else states

    def choices(self, states: set[State]) -> list[int] | None:
        """Every token ``pick`` may choose at ``states`` (EOS included where it may), or None where
        that is nearly the whole vocabulary (unconstrained; inside an attribute value). Greedy's
        choice is the argmax over these, so the output head need score only them."""
        if not self.constrained:
            return None
        key = frozenset(states)
        if key not in self._choices:
            ids = allowed_by_walk(self.trie, states, self.source, self.grammar) if states else []
            if ids is not None and (not ids or finished(states, self.source)):
                ids.append(self.eos_id)
            self._choices[key] = ids
        return self._choices[key]

    def _allowed(self, token_id: int) -> bool:
        if token_id == self.eos_id:
            return finished(self.states, self.source)
        text = self.trie.strings.get(token_id)
        return text is not None and bool(advance(self.states, text, self.source, self.grammar))

    def pick(self, logits: torch.Tensor) -> int:
        """The greedy choice among the allowed tokens (EOS only once the source is complete)."""
        top = int(logits.argmax())
        if not self.constrained or self._allowed(top):
            return top
        if not self.states:
            return self.eos_id
        # the next best tokens, best first: the first one allowed is the argmax over the allowed ones
        for token_id in logits.topk(RUNNERS_UP + 1).indices[1:].tolist():
            if self._allowed(token_id):
                return token_id
        ids = allowed_tokens(self.trie, self.states, self.source, self.grammar)
        if finished(self.states, self.source) or not ids:
            ids.append(self.eos_id)
        return ids[int(logits[ids].argmax())]

    def draft(self, max_chars: int = 96) -> str:
        """The text that most likely follows: the rest of a half-written tag, then the rest of the source.

        Where a tag's class is still open, the first class in the grammar's order that fits is
        guessed: a wrong guess costs nothing but the guessed positions.
        """
        if not self.states:
            return ""
        pos, opened, buf = min(self.states)
        is_open = opened >= 0
        rest = self.source[pos:pos + max_chars]
        if not buf:
            if is_open and pos in self.grammar.forced_end:
                return self.grammar.close_tag + rest
            if not is_open and pos in self.grammar.forced_start:
                return f'<span class="{self.grammar.forced_start[pos]}">' + rest
            return rest
        if is_open:
            return self.grammar.close_tag[len(buf):] + rest
        guess = next((t for t in self.grammar.open_tag_order if t.startswith(buf)), None)
        if guess is not None:
            return guess[len(buf):] + rest
        # inside a joint tag's attributes: a value copies source text, so once it has begun, guess the
        # rest of its word from the source, then the end of the value and of the tag
        value = _OPEN_VALUE.search(buf)
        if value is None:
            return ">" + rest if buf.endswith('"') and self.grammar.open_tag(buf + ">") == "complete" else ""
        tail = _word_after(self.source, value.group(1), pos)
        return "" if tail is None else tail + '">' + rest


_OPEN_VALUE = re.compile(r'="([^"]+)$')
_ATTRIBUTES = re.compile(r'^( [^"=]+="[^"]*")*')


def _word_after(source: str, begun: str, pos: int) -> str | None:
    """The rest of the word that ``begun`` starts, at its occurrence in ``source`` nearest ``pos``."""
    starts = [m.start() for m in re.finditer(re.escape(begun), source)]
    if not starts:
        return None
    end = min(starts, key=lambda i: abs(i - pos)) + len(begun)
    stop = end
    while stop < len(source) and source[stop].isalnum():
        stop += 1
    return source[end:stop]
