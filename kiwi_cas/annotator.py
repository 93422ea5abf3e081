"""KiwiAnnotator: the CAS in -> CAS out core, with the lifecycle of a cTAKES PBJ annotator.

``initialize()`` loads the model once, ``process(cas)`` annotates one CAS in place and
returns it, ``process_batch(cases)`` does the same for many CASes with one extractor
call (how throughput is won), ``collection_process_complete()`` returns the totals.
The annotator holds no per-document state, so it runs unchanged under a process pool,
a message queue or a cluster engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from cassis import Cas

from kiwi_cas import schema
from kiwi_cas.cas.kiwi_annotations import WriteCounts, read_kiwi, remove_kiwi, write_kiwi, write_sentences
from kiwi_cas.cas.ctakes import ctakes_entities, project, require_ctakes
from kiwi_cas.cas.sentences import cas_sentences
from kiwi_cas.extractors.base import Extractor
from kiwi_cas.pipeline import NoteInput, extract_notes

TASKS = ("all", "ner", "re")


@dataclass
class AnnotatorConfig:
    extractor: str = "bert"
    model: str | None = None  # None: the embedded default model
    task: str = "all"  # all: entities+modifiers+relations; ner: entities only; re: keep entities, add the rest
    view: str = "_InitialView"
    sentence_type: str | None = None
    write_sentences: bool = False
    threads: int | None = None
    backend: str = "auto"  # llama only: auto | vllm | transformers
    constrained: bool = True  # llama only: output = input text with tags inserted
    precision: str = "int8"  # bert only: int8 (dynamic quantization, ~2x faster on CPU) | fp32 (as trained)
    ctakes: bool = False  # also write the findings in cTAKES types
    entities_from: str = "kiwi"  # task "re": take the given entities from Kiwi or cTAKES annotations


@dataclass
class Totals:
    documents: int = 0
    entities: int = 0
    modifiers: int = 0
    relations: int = 0

    def add(self, c: WriteCounts) -> None:
        self.documents += 1
        self.entities += c.entities
        self.modifiers += c.modifiers
        self.relations += c.relations


@dataclass
class KiwiAnnotator:
    config: AnnotatorConfig = field(default_factory=AnnotatorConfig)
    extractor: Extractor | None = None
    totals: Totals = field(default_factory=Totals)

    def initialize(self) -> None:
        if self.config.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {self.config.task!r}")
        if self.extractor is None:
            from kiwi_cas.extractors.registry import load_extractor

            self.extractor = load_extractor(self.config.extractor, self.config.model, threads=self.config.threads,
                                            backend=self.config.backend, constrained=self.config.constrained,
                                            precision=self.config.precision)

    def process(self, cas: Cas) -> Cas:
        return self.process_batch([cas])[0]

    def process_batch(self, cases: Sequence[Cas]) -> list[Cas]:
        """Annotate CASes in place (one batched extractor call) and return them."""
        if self.extractor is None:
            self.initialize()
        views = [self._view(c) for c in cases]
        notes: list[NoteInput] = []
        existing: list[dict] = []
        from_ctakes = self.config.task == "re" and self.config.entities_from == "ctakes"
        for view in views:
            sentences, _ = cas_sentences(view, self.config.sentence_type)
            if self.config.ctakes:
                require_ctakes(view)
            remove_kiwi(view, keep_entities=self.config.task == "re" and not from_ctakes)
            given, mentions = None, {}
            if from_ctakes:
                given, mentions = ctakes_entities(view)
            elif self.config.task == "re":
                given = read_kiwi(view).entities
            existing.append(mentions)
            if self.config.write_sentences:
                write_sentences(view, sentences)
            notes.append(NoteInput(view.sofa_string or "", sentences, given))
        found = extract_notes(self.extractor, notes)
        for view, ext, mentions in zip(views, found, existing):
            if self.config.task == "ner":
                ext.modifiers, ext.relations = [], []
            counts = write_kiwi(view, ext, self.extractor.name, write_entities=self.config.task != "re" or from_ctakes)
            if self.config.ctakes:
                projected = project(view, ext, existing=mentions)
                for key, twin in projected.created.items():
                    kiwi_fs = counts.written.get(key)
                    if kiwi_fs is not None:
                        kiwi_fs.ctakesTwin = twin
            self.totals.add(counts)
        return list(cases)

    def collection_process_complete(self) -> Totals:
        return self.totals

    def _view(self, cas: Cas) -> Cas:
        try:
            view = cas.get_view(self.config.view)
        except KeyError as exc:
            raise ValueError(f"the CAS has no view named {self.config.view!r}") from exc
        if not view.typesystem.contains_type(schema.RELATION_TYPE):
            raise ValueError("the CAS typesystem lacks the Kiwi types; load it with kiwi_cas.cas.io")
        return view


def annotate_file(path: str | Path, annotator: KiwiAnnotator | None = None, **load_options) -> Cas:
    """Python API for one file: load (XMI or .txt), annotate, return the CAS (not saved)."""
    from kiwi_cas.cas.io import load_input

    annotator = annotator or KiwiAnnotator()
    loaded = load_input(Path(path), **load_options)
    return annotator.process(loaded.cas)
