"""Build an extractor by name; heavy imports happen only for the one asked for."""

from __future__ import annotations

from pathlib import Path

from kiwi_cas.extractors.base import Extractor

EXTRACTORS = ("bert", "llama")


def load_extractor(kind: str = "bert", model: str | Path | None = None, **options) -> Extractor:
    if kind == "bert":
        from kiwi_cas.extractors.bert.extractor import BertExtractor, configure_threads

        configure_threads(options.get("threads"))
        return BertExtractor(model, precision=options.get("precision") or "int8")
    if kind == "llama":
        from kiwi_cas.extractors.bert.extractor import configure_threads
        from kiwi_cas.extractors.llama.extractor import LlamaExtractor

        configure_threads(options.get("threads"))
        return LlamaExtractor(model, backend=options.get("backend") or "auto",
                              constrained=options.get("constrained", True))
    raise ValueError(f"unknown extractor {kind!r} (available: {', '.join(EXTRACTORS)})")
