"""Plain data passed between extractors, formats and the CAS writer.

Offsets are Python code points into the note text, end exclusive. Nothing here knows
UIMA or torch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A labelled character span: an entity or a modifier."""

    start: int
    end: int
    label: str
    confidence: float = 1.0

    def key(self) -> tuple[int, int, str]:
        return (self.start, self.end, self.label)


@dataclass(frozen=True)
class Relation:
    """An entity -> modifier link; both ends are spans of the same document."""

    entity: Span
    modifier: Span
    confidence: float = 1.0

    @property
    def category(self) -> str:
        return self.modifier.label


@dataclass
class Extraction:
    """Everything an extractor found in one text."""

    entities: list[Span] = field(default_factory=list)
    modifiers: list[Span] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    #: model outputs that could not be placed in the text, by reason (LLaMA alignment); travels with the result
    unaligned: Counter = field(default_factory=Counter)

    def shifted(self, offset: int) -> "Extraction":
        """The same extraction with every offset moved by ``offset`` (sentence -> document)."""

        def mv(s: Span) -> Span:
            return Span(s.start + offset, s.end + offset, s.label, s.confidence)

        ents = {s: mv(s) for s in self.entities}
        mods = {s: mv(s) for s in self.modifiers}
        rels = [
            Relation(ents.get(r.entity, mv(r.entity)), mods.get(r.modifier, mv(r.modifier)), r.confidence)
            for r in self.relations
        ]
        return Extraction(list(ents.values()), list(mods.values()), rels, Counter(self.unaligned))

    def extend(self, other: "Extraction") -> None:
        self.entities.extend(other.entities)
        self.modifiers.extend(other.modifiers)
        self.relations.extend(other.relations)
        self.unaligned.update(other.unaligned)


@dataclass
class Counts:
    """What was written for one or many documents; results carry their own, so they add up under concurrency."""

    documents: int = 0
    entities: int = 0
    modifiers: int = 0
    relations: int = 0
    dropped: int = 0  # input structures of unknown types dropped under --lenient
    unaligned: Counter = field(default_factory=Counter)  # model outputs not written, by reason
    #: per document: things the user should know (never note text); sums leave them to the caller
    warnings: list[str] = field(default_factory=list)

    def __iadd__(self, other: "Counts") -> "Counts":
        self.documents += other.documents
        self.entities += other.entities
        self.modifiers += other.modifiers
        self.relations += other.relations
        self.dropped += other.dropped
        self.unaligned.update(other.unaligned)
        return self


@dataclass
class Document:
    """A note with (optionally) its gold or predicted annotations."""

    name: str
    text: str
    annotations: Extraction = field(default_factory=Extraction)
