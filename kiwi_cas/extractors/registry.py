"""Extractors by name: a config class and a lazily imported factory each (torch loads only when used)."""

from __future__ import annotations

import dataclasses
import functools
import importlib

from kiwi_cas.errors import UsageError
from kiwi_cas.extractors.base import Extractor
from kiwi_cas.extractors.config import BertConfig, ExtractorConfig, LlamaConfig

#: name -> (config class, "module:class" with a ``from_config`` constructor)
EXTRACTORS: dict[str, tuple[type, str]] = {
    "bert": (BertConfig, "kiwi_cas.extractors.bert.extractor:BertExtractor"),
    "llama": (LlamaConfig, "kiwi_cas.extractors.llama.extractor:LlamaExtractor"),
}


def extractor_config(name: str, **options) -> ExtractorConfig:
    """The config of extractor ``name`` from option values; ``None`` means "not given, use the default".

    An option given that the extractor does not have is a usage error, never silently ignored.
    """
    if name not in EXTRACTORS:
        raise UsageError(f"unknown extractor {name!r} (available: {', '.join(EXTRACTORS)})")
    cls = EXTRACTORS[name][0]
    fields = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in options.items() if v is not None}
    foreign = sorted(set(given) - fields)
    if foreign:
        owners = {k: [n for n, (c, _) in EXTRACTORS.items() if k in {f.name for f in dataclasses.fields(c)}]
                  for k in foreign}
        which = "; ".join(f"--{k.replace('_', '-')} applies to --extractor {'/'.join(v) or '(none)'}"
                          for k, v in owners.items())
        raise UsageError(f"{which}, not {name}")
    return cls(**given)


@functools.lru_cache(maxsize=4)
def load_extractor(config: ExtractorConfig) -> Extractor:
    """The extractor for ``config``, loaded once per process: extractors hold no per-document state, so
    annotators with different tasks or views (a service, a test suite, a benchmark) share one model."""
    module, cls = EXTRACTORS[config.name][1].split(":")
    return getattr(importlib.import_module(module), cls).from_config(config)
