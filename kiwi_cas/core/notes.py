"""Document-level extraction: sentences of many notes go to the extractor in one batch.

This is the text-only core shared by the CAS annotator and by training's dev evaluation:
(text, sentence offsets, optional given entities) -> document-level Extraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from kiwi_cas.core.boundaries import fix_boundaries
from kiwi_cas.core.spans import Extraction, Span
from kiwi_cas.core.splitter import split_sentences

if TYPE_CHECKING:  # the protocol only; core imports nothing of the extractors
    from kiwi_cas.extractors.base import Extractor


@dataclass
class NoteInput:
    text: str
    sentences: list[tuple[int, int]] | None = None  # None: use the built-in splitter
    entities: list[Span] | None = None  # given entities (task "re"), document offsets


def extract_notes(extractor: "Extractor", notes: Sequence[NoteInput], function_words: bool = True) -> list[Extraction]:
    """Run the extractor over all sentences of all notes in one call; offsets come back in note space.

    Spans are then fixed by ``core.boundaries``; ``function_words=False`` leaves out its
    closed-class rule (only to measure what that rule gives).
    """
    flat_texts: list[str] = []
    flat_entities: list[list[Span]] = []
    flat_contexts: list[str] = []
    owners: list[tuple[int, int]] = []  # (note index, sentence start)
    with_entities = any(n.entities is not None for n in notes)
    for ni, note in enumerate(notes):
        sents = note.sentences if note.sentences is not None else split_sentences(note.text)
        previous = ""
        for s, e in sents:
            if e <= s:
                continue
            flat_texts.append(note.text[s:e])
            flat_contexts.append(previous)
            previous = note.text[s:e]
            owners.append((ni, s))
            if with_entities:
                flat_entities.append([Span(x.start - s, x.end - s, x.label, x.confidence)
                                      for x in (note.entities or []) if s <= x.start and x.end <= e])
    found = (extractor.extract(flat_texts, flat_entities if with_entities else None, flat_contexts)
             if flat_texts else [])
    results = [Extraction() for _ in notes]
    for (ni, start), ext in zip(owners, found):
        results[ni].extend(ext.shifted(start))
    results = [fix_boundaries(n.text, r, fix_entities=n.entities is None, function_words=function_words)
               for n, r in zip(notes, results)]
    if with_entities:
        # given entities keep their identity (and those outside any sentence are kept too)
        for ni, note in enumerate(notes):
            lookup = {e.key(): e for e in (note.entities or [])}
            res = results[ni]
            res.relations = [r.__class__(lookup.get(r.entity.key(), r.entity), r.modifier, r.confidence)
                             for r in res.relations]
            res.entities = list(note.entities or [])
    return results
