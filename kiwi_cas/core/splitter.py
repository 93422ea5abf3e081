"""A rule-based sentence splitter for clinical notes (used when the CAS has no sentences).

Clinical text breaks the rules of newswire splitters: section headers end with a colon
("PHYSICAL EXAMINATION: Lungs clear."), lists are numbered ("1. Sepsis. 2. Pneumonia."),
lines are meaningful units, and periods appear in abbreviations ("Dr.", "b.i.d.", "p.o.")
and decimals ("0.35 mg"). This splitter works on code-point offsets and never changes text.
"""

from __future__ import annotations

import re

#: lower-cased tokens (without the final period) after which a period does not end a sentence.
ABBREVIATIONS: frozenset[str] = frozenset(
    """dr mr mrs ms prof sr jr st vs etc approx appt apt dept est min max no nos
    b.i.d t.i.d q.i.d q.d q.h q.o.d p.o p.r p.r.n prn h.s a.c p.c i.v i.m s.c subq q
    e.g i.e a.m p.m u.s fig figs pt pts hx dx tx rx sx fx yo y.o mg mcg ml
    cm mm kg lb lbs oz hr hrs wk wks mo mos yr yrs inc co ltd""".split()
)

_HEADER = re.compile(r"^[ \t]*(?:[A-Z][A-Z0-9/&,()' -]{1,60}?):(?=[ \t]+\S)")
_ENDER = re.compile(r"[.!?]+[\"')\]]*(?=\s)")
_LIST_MARK = re.compile(r"(?:\d{1,2}|[a-zA-Z])[.)]$")
_TERMINAL = re.compile(r"[.!?:;]\s*$")


def split_lines(text: str) -> list[tuple[int, int]]:
    """Line-level blocks; a line break inside hard-wrapped prose does not end a block."""
    blocks: list[tuple[int, int]] = []
    start = 0
    pos = 0
    for line in text.splitlines(keepends=True):
        end = pos + len(line)
        body = line.rstrip("\r\n")
        nxt = text[end:end + 1]
        wrapped = bool(body.strip()) and not _TERMINAL.search(body) and nxt.islower()
        if not wrapped:
            blocks.append((start, pos + len(body)))
            start = end
        pos = end
    if start < len(text):
        blocks.append((start, len(text)))
    return blocks


def _split_block(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split one line-level block into sentences."""
    out: list[tuple[int, int]] = []
    block = text[start:end]
    cut = 0
    m = _HEADER.match(block)
    if m:
        out.append((start, start + m.end()))
        cut = m.end()
    for m in _ENDER.finditer(block):
        if m.end() <= cut:
            continue
        before = block[cut:m.start()].rsplit(None, 1)
        word = before[-1] if before else ""
        following = block[m.end():].lstrip()
        if not following:
            continue
        low = word.lower().rstrip(".")
        if block[m.start()] == "." and len(m.group()) == 1:
            if low in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
            if _LIST_MARK.match(word + ".") and len(before) == 1 and not block[cut:m.start()].strip()[:-len(word)].strip():
                continue  # "1." opening a list item
        if not (following[0].isupper() or following[0].isdigit() or following[0] in "\"'(-*•"):
            continue
        out.append((start + cut, start + m.end()))
        cut = m.end()
    out.append((start + cut, end))
    return out


def trimmed(text: str, spans) -> list[tuple[int, int]]:
    """The spans without leading and trailing whitespace; empty ones dropped."""
    out: list[tuple[int, int]] = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def split_block(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of one line-level block (``text[start:end]``), trimmed."""
    return trimmed(text, _split_block(text, start, end))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence (start, end) code-point offsets, whitespace-trimmed, empty ones dropped."""
    return [span for bstart, bend in split_lines(text) for span in split_block(text, bstart, bend)]


def join_wrapped(text: str, sentences: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join sentences that another tool split at a hard line break inside a sentence.

    cTAKES's sentence detector ends a sentence at every line end, so "No evidence of" and
    "pneumonia." become two sentences and the negation cue loses its finding. Two neighbours
    are joined when only one line break (and spaces) lies between them, the first does not end
    in sentence punctuation, and the second starts in lower case: the rule that
    :func:`split_lines` uses for hard-wrapped prose.
    """
    out: list[tuple[int, int]] = []
    for s, e in sorted(sentences):
        if out:
            ps, pe = out[-1]
            gap = text[pe:s]
            if (s >= pe and not gap.strip() and gap.count("\n") == 1 and not _TERMINAL.search(text[ps:pe])
                    and text[s:s + 1].islower()):
                out[-1] = (ps, e)
                continue
        out.append((s, e))
    return out
