"""The extractor contract shared by the BERT and LLaMA extractors."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from kiwi_cas.core.spans import Extraction, Span


@runtime_checkable
class Extractor(Protocol):
    """Finds entities, modifiers and relations in texts (usually sentences).

    ``extract`` gets a batch of texts and returns one :class:`Extraction` per text, offsets
    relative to that text. With ``entities`` given (task ``re``), the extractor keeps those
    entities as they are and only adds modifiers and relations for them. ``contexts`` (one per
    text: the text just before it in its note) may be read by extractors trained with left
    context and ignored by others. Batching many texts per call is how extractors get their
    speed; callers should pass whole notes' sentences.
    """

    #: written into each annotation's ``extractor`` feature, e.g. "bert:kiwi-minilm-mtsamples@0.1.0"
    name: str

    def extract(self, texts: Sequence[str], entities: Sequence[Sequence[Span]] | None = None,
                contexts: Sequence[str] | None = None) -> list[Extraction]:
        ...
