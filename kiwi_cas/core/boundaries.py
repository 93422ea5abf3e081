"""Span boundaries that a reader can trust: whole words, and never across a sentence or section break.

Extractors predict over subword tokens and over whatever sentences they were given; both
can leave a span that starts or ends inside a word ("Cho" of "Cholesterol", "8:" of "8:00")
or that runs over a line break into the next section ("lymphadenopathy\\nLungs"). These
rules fix the document-level spans of an extraction:

- a span never starts or ends between two letters or digits of the same word (``AT&T``
  counts as one), nor inside a number written with ``.``, ``,``, ``:`` or ``/`` between
  digits (decimals, times, dates, fractions): it grows to the whole word;
- a span never crosses a line break that ends a sentence or section (the line before ends in
  ``.!?:;``, a blank line follows, or the next line opens a header or list item): it keeps
  the part before the break (or, if that is empty, the part after).

Relations follow their spans; spans that become identical are merged.
"""

from __future__ import annotations

import re

from kiwi_cas.core.spans import Extraction, Relation, Span
from kiwi_cas.core.splitter import trimmed

_NUMBER_JOINERS = ".,:/"
_BREAK_AFTER = re.compile(r"[.!?:;][\"')\]]*[ \t]*$")
_OPENS_BLOCK = re.compile(r"[ \t]*(?:[A-Z][A-Za-z0-9/&,()' -]{0,40}:|(?:\d{1,2}|[a-zA-Z])[.)][ \t]|[-*•][ \t])")


def _joined(text: str, p: int) -> bool:
    """True when offset ``p`` falls inside a word or a number (between text[p-1] and text[p])."""
    if p <= 0 or p >= len(text):
        return False
    a, b = text[p - 1], text[p]
    if a.isalnum() and b.isalnum():
        return True
    if "&" in (a, b) and p >= 2 and p + 1 < len(text) and (a.isalnum() and text[p + 1].isalnum()
                                                             or b.isalnum() and text[p - 2].isalnum()):
        return True  # AT&T, Q&A
    if b in _NUMBER_JOINERS and a.isdigit() and p + 1 < len(text) and text[p + 1].isdigit():
        return True
    return a in _NUMBER_JOINERS and b.isdigit() and p >= 2 and text[p - 2].isdigit()


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    while _joined(text, start):
        start -= 1
    while _joined(text, end):
        end += 1
    return start, end


def _breaks(text: str, start: int, end: int) -> list[int]:
    """Offsets of line breaks inside [start, end) that end a sentence or section."""
    found = []
    for m in re.finditer(r"\r?\n", text[start:end]):
        at = start + m.start()
        line_start = text.rfind("\n", 0, at) + 1
        after = start + m.end()
        next_line = text[after:text.find("\n", after) if "\n" in text[after:] else len(text)]
        if (_BREAK_AFTER.search(text[line_start:at]) or not next_line.strip()
                or _OPENS_BLOCK.match(next_line)):
            found.append(at)
    return found


def within_sentence(text: str, start: int, end: int) -> tuple[int, int]:
    cuts = _breaks(text, start, end)
    if not cuts:
        return start, end
    pieces = [(start, cuts[0])] + [(text.index("\n", c) + 1, nxt) for c, nxt in zip(cuts, cuts[1:] + [end])]
    kept = trimmed(text, pieces)
    return kept[0] if kept else (start, end)


def fix_span(text: str, span: Span) -> Span:
    s, e = within_sentence(text, *whole_words(text, span.start, span.end))
    return span if (s, e) == (span.start, span.end) else Span(s, e, span.label, span.confidence)


def fix_boundaries(text: str, ext: Extraction, fix_entities: bool = True) -> Extraction:
    """The extraction with every predicted span fixed by the rules above (given entities stay as given)."""
    def fix_all(spans: list[Span]) -> dict[Span, Span]:
        fixed: dict[Span, Span] = {}
        seen: dict[tuple, Span] = {}
        for sp in spans:
            new = fix_span(text, sp)
            fixed[sp] = seen.setdefault(new.key(), new)
        return fixed

    ents = fix_all(ext.entities) if fix_entities else {e: e for e in ext.entities}
    mods = fix_all(ext.modifiers)
    rels: dict[tuple, Relation] = {}
    for r in ext.relations:
        rel = Relation(ents.get(r.entity, r.entity), mods.get(r.modifier, r.modifier), r.confidence)
        rels.setdefault((rel.entity.key(), rel.modifier.key()), rel)
    return Extraction(list(dict.fromkeys(ents.values())), list(dict.fromkeys(mods.values())), list(rels.values()),
                      ext.unaligned)
