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
  the part before the break (or, if that is empty, the part after);
- an entity never ends with a closed-class word (determiner, possessive, preposition,
  conjunction, auxiliary): "mild arthritis with" becomes "mild arthritis". None of the 6,919
  gold entities of the 96 MTSamples training notes ends with one, while the BERT model's
  cross-validated predictions did 80 times. An entity made of such words alone ("a") joins an
  entity of the same type right after it ("a" + "prior prostate biopsy"), else it is dropped.
  Modifiers are left alone: negation cues end in prepositions ("no evidence of").

Relations follow their spans; spans that become identical are merged, and the relations of a
dropped entity go with it.
"""

from __future__ import annotations

import re

from kiwi_cas.core.spans import Extraction, Relation, Span
from kiwi_cas.core.splitter import trimmed

_NUMBER_JOINERS = ".,:/"
#: closed-class words no entity ends with (see the module docstring); compared lower-cased
FUNCTION_WORDS = frozenset(
    "a an the this that these those his her their its my your our "
    "of in on at by for with without from to into onto over under about after before during since until upon within "
    "and or nor but as than is was are were be been has had have which who whom whose".split())
_LAST_WORD = re.compile(r"(\S+)\s*$")
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


def without_function_words(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span with trailing closed-class words cut off; None when nothing else is left."""
    while end > start:
        m = _LAST_WORD.search(text, start, end)
        if m is None or m.group(1).lower() not in FUNCTION_WORDS:
            return start, end
        end = m.start()
        while end > start and text[end - 1].isspace():
            end -= 1
    return None


def _fix_entities(text: str, spans: list[Span], function_words: bool) -> dict[Span, Span | None]:
    """Each entity's fixed span (None: dropped): whole words, one sentence, no trailing function word."""
    shaped = {sp: fix_span(text, sp) for sp in spans}
    if not function_words:
        return shaped
    out: dict[Span, Span | None] = {}
    joined: dict[Span, Span] = {}  # a function-word-only entity -> the entity it now begins
    order = sorted(spans, key=lambda sp: (shaped[sp].start, shaped[sp].end))
    for i, sp in enumerate(order):
        cur = shaped[sp]
        cut = without_function_words(text, cur.start, cur.end)
        if cut is None:  # only function words: the start of the next entity of its type, or nothing
            nxt = shaped[order[i + 1]] if i + 1 < len(order) else None
            if (nxt is not None and nxt.label == cur.label and nxt.start >= cur.end
                    and not text[cur.end:nxt.start].strip()):
                shaped[order[i + 1]] = Span(cur.start, nxt.end, nxt.label, nxt.confidence)
                joined[sp] = order[i + 1]
            out[sp] = None
        else:
            out[sp] = cur if cut == (cur.start, cur.end) else Span(*cut, cur.label, cur.confidence)
    for sp, into in reversed(joined.items()):  # reversed: a chain "the" "a" "x" resolves from its end
        out[sp] = out[into]
    return out


def fix_boundaries(text: str, ext: Extraction, fix_entities: bool = True, function_words: bool = True) -> Extraction:
    """The extraction with every predicted span fixed by the rules above (given entities stay as given).

    ``function_words=False`` leaves out the closed-class rule, to measure it (benchmarks/decoding.py).
    """
    def dedupe(fixed: dict[Span, Span | None]) -> dict[Span, Span | None]:
        seen: dict[tuple, Span] = {}
        return {sp: None if new is None else seen.setdefault(new.key(), new) for sp, new in fixed.items()}

    ents = (dedupe(_fix_entities(text, ext.entities, function_words)) if fix_entities
            else {e: e for e in ext.entities})
    mods = dedupe({sp: fix_span(text, sp) for sp in ext.modifiers})
    rels: dict[tuple, Relation] = {}
    for r in ext.relations:
        ent = ents.get(r.entity, r.entity)
        if ent is None:
            continue
        rel = Relation(ent, mods.get(r.modifier) or r.modifier, r.confidence)
        rels.setdefault((rel.entity.key(), rel.modifier.key()), rel)
    return Extraction([e for e in dict.fromkeys(ents.values()) if e is not None],
                      [m for m in dict.fromkeys(mods.values()) if m is not None], list(rels.values()),
                      ext.unaligned)
