"""Tagged model output -> character offsets in the original sentence, defensively.

The model may change whitespace or case, drop or repeat words, leave tags unclosed, nest
them, invent classes or write more than it was given. We never trust it: a tagged
phrase becomes a span only where its text is found at that place in the original
sentence (case- and whitespace-insensitively); everything else is dropped and counted.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

_TAG = re.compile(r'<span\s+class\s*=\s*["\']?([A-Za-z_\-]+)["\']?((?:\s+[A-Za-z_\-]+\s*=\s*"[^"\n]*")*)\s*>'
                  r'|</span\s*>', re.IGNORECASE)
_ATTR = re.compile(r'([A-Za-z_\-]+)\s*=\s*"([^"\n]*)"')


@dataclass
class Tagged:
    label: str
    start: int  # offsets into the tag-free output text
    end: int
    attributes: list[tuple[str, str]] = field(default_factory=list)  # joint format: (modifier label, text)


@dataclass
class Alignment:
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # offsets into the source sentence
    links: list[tuple[tuple[int, int, str], tuple[int, int, str]]] = field(default_factory=list)  # joint: (entity, modifier)
    dropped: Counter = field(default_factory=Counter)  # reason -> count


def parse_tags(output: str) -> tuple[str, list[Tagged], Counter]:
    """Strip tags from ``output``; return the plain text, the tagged ranges in it and problems seen."""
    plain: list[str] = []
    length = 0
    stack: list[tuple[str, int, list[tuple[str, str]]]] = []
    found: list[Tagged] = []
    problems: Counter = Counter()
    pos = 0
    for m in _TAG.finditer(output):
        chunk = output[pos:m.start()]
        plain.append(chunk)
        length += len(chunk)
        pos = m.end()
        if m.group(1) is not None:
            attrs = [(k.lower(), v) for k, v in _ATTR.findall(m.group(2) or "")]
            stack.append((m.group(1).lower(), length, attrs))
        elif stack:
            label, start, attrs = stack.pop()
            found.append(Tagged(label, start, length, attrs))
        else:
            problems["unopened_close"] += 1
    plain.append(output[pos:])
    problems["unclosed"] += len(stack)
    text = "".join(plain)
    # stray tag fragments ("<span class=" cut off) stay in the text; alignment will not match them
    return text, found, +problems


def _norm(text: str) -> tuple[str, list[int]]:
    """Case-folded text with whitespace runs collapsed to one space, and each char's source index."""
    out: list[str] = []
    index: list[int] = []
    prev_space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            if prev_space:
                continue
            prev_space = True
            out.append(" ")
        else:
            prev_space = False
            out.append(ch.lower() if len(ch.lower()) == 1 else ch)
        index.append(i)
    return "".join(out), index


def align(source: str, output: str, allowed: set[str] | frozenset[str], ignore: set[str] = frozenset(),
          attributes: dict[str, tuple[str, ...]] | None = None) -> Alignment:
    """Spans of ``allowed`` labels from a tagged ``output``, placed in ``source``.

    Tags of ``ignore`` labels (the pre-marked main entity of an RE prompt) are skipped silently.
    With ``attributes`` (the joint format: tag label -> modifier labels it may carry), each
    placed tag's attributes become modifiers linked to it, each at the occurrence of its text
    nearest to the tagged span (``links``).
    """
    result = Alignment()
    plain, tagged, problems = parse_tags(output)
    result.dropped.update(problems)
    if not tagged:
        return result
    src_n, src_idx = _norm(source)
    out_n, out_idx = _norm(plain)
    # map output positions -> normalised source positions through matching blocks
    out_pos_of = {orig: k for k, orig in enumerate(out_idx)}
    matcher = SequenceMatcher(None, out_n, src_n, autojunk=False)
    to_src: dict[int, int] = {}
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            to_src[a + k] = b + k
    taken: list[tuple[int, int]] = []
    for t in tagged:
        if t.label in ignore:
            continue
        if t.label not in allowed:
            result.dropped["invented_class"] += 1
            continue
        phrase = plain[t.start:t.end].strip()
        if not phrase:
            result.dropped["empty"] += 1
            continue
        lead = len(plain[t.start:t.end]) - len(plain[t.start:t.end].lstrip())
        ostart = _first_at_or_after(out_pos_of, t.start + lead, len(plain))
        span = _place(phrase, ostart, to_src, source, src_n, src_idx)
        if span is None:
            result.dropped["unaligned"] += 1
            continue
        if any(span == (s, e) or (span[0] < e and s < span[1] and not _nested(span, (s, e))) for s, e in taken):
            result.dropped["overlap"] += 1
            continue
        taken.append(span)
        result.spans.append((span[0], span[1], t.label))
        if attributes is not None:
            _link(result, (span[0], span[1], t.label), t.attributes, attributes.get(t.label, ()), source, src_n,
                  src_idx)
    result.spans.sort()
    return result


def _link(result: Alignment, entity: tuple[int, int, str], attrs: list[tuple[str, str]], allowed: tuple[str, ...],
          source: str, src_n: str, src_idx: list[int]) -> None:
    """Place a joint tag's modifiers (label, text) near its entity and record the links."""
    for label, text in attrs:
        if label not in allowed:
            result.dropped["invented_class"] += 1
            continue
        target, _ = _norm(text.strip())
        if not target.strip():
            result.dropped["empty"] += 1
            continue
        best = None
        for m in re.finditer(re.escape(target), src_n):
            p, q = m.start(), m.start() + len(target)
            if not _word_bounded(src_n, p, q):
                continue
            s, e = src_idx[p], src_idx[q - 1] + 1
            if s < entity[1] and entity[0] < e and not _nested((s, e), entity[:2]):
                continue  # a modifier crossing its entity's edge
            gap = max(entity[0] - e, s - entity[1], 0)
            key = (gap, s > entity[0])  # nearest; on a tie the one before the entity (cues precede)
            if best is None or key < best[0]:
                best = (key, (s, e, label))
        if best is None:
            result.dropped["unaligned"] += 1
            continue
        if best[1] in (link[1] for link in result.links if link[0] == entity):
            continue
        result.links.append((entity, best[1]))


def _nested(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return (a[0] <= b[0] and b[1] <= a[1]) or (b[0] <= a[0] and a[1] <= b[1])


def _first_at_or_after(pos_of: dict[int, int], i: int, n: int) -> int | None:
    while i < n:
        if i in pos_of:
            return pos_of[i]
        i += 1
    return None


def _place(phrase: str, ostart: int | None, to_src: dict[int, int], source: str, src_n: str,
           src_idx: list[int]) -> tuple[int, int] | None:
    """Source (start, end) of ``phrase``: where the diff maps it, else its nearest exact occurrence."""
    target, _ = _norm(phrase)
    candidates: list[int] = []
    if ostart is not None and ostart in to_src:
        candidates.append(to_src[ostart])
    anchor = candidates[0] if candidates else None
    # all occurrences of the normalised phrase in the normalised source, nearest to the anchor first
    occ = [m.start() for m in re.finditer(re.escape(target), src_n)]
    if anchor is not None:
        occ.sort(key=lambda p: abs(p - anchor))
    for p in candidates + occ:
        if src_n.startswith(target, p) and _word_bounded(src_n, p, p + len(target)):
            s = src_idx[p]
            e = src_idx[p + len(target) - 1] + 1
            return s, e
    return None


def _word_bounded(text: str, s: int, e: int) -> bool:
    """A phrase must not start or end inside a word of the source."""
    before = text[s - 1] if s > 0 else " "
    after = text[e] if e < len(text) else " "
    return not (before.isalnum() and text[s].isalnum()) and not (after.isalnum() and text[e - 1].isalnum())
