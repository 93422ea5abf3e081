"""KiwiAnnotator: the CAS in -> CAS out core, with the lifecycle of a cTAKES PBJ annotator.

``initialize()`` loads the model once, ``process(cas)`` annotates one CAS in place and
returns it, ``process_batch(cases)`` does the same for many CASes with one extractor
call (how throughput is won) and returns what was written for each,
``collection_process_complete()`` returns the totals. Like a spaCy component, the work is
split in two: *predict* (text in, plain spans out: the extractor) and *set annotations*
(spans into the CAS: ``cas/``). The annotator holds no per-document state, so it runs
unchanged under a process pool, a message queue, a cluster engine or a web service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from cassis import Cas

from kiwi_cas.cas.ctakes import ctakes_entities, project, remove_projections, require_ctakes
from kiwi_cas.cas.sentences import cas_sentences
from kiwi_cas.cas.writer import read_kiwi, remove_kiwi, write_kiwi, write_sentences
from kiwi_cas.core import schema
from kiwi_cas.core.notes import NoteInput, extract_notes
from kiwi_cas.core.spans import Counts
from kiwi_cas.errors import InputError, UsageError
from kiwi_cas.extractors.base import Extractor
from kiwi_cas.extractors.config import BertConfig, ExtractorConfig

TASKS = ("all", "ner", "re")
ENTITY_SOURCES = ("kiwi", "ctakes")


@dataclass(frozen=True)
class AnnotatorConfig:
    """What to find and where to write it; the extractor's own settings travel in ``extractor``."""

    extractor: ExtractorConfig = field(default_factory=BertConfig)
    task: str = "all"  # all: entities+modifiers+relations; ner: entities only; re: keep entities, add the rest
    view: str = "_InitialView"
    sentence_type: str | None = None
    write_sentences: bool = False
    ctakes: bool = False  # also write the findings in cTAKES types
    entities_from: str = "kiwi"  # task "re": take the given entities from Kiwi or cTAKES annotations

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UsageError(f"--task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.entities_from not in ENTITY_SOURCES:
            raise UsageError(f"--entities-from must be one of {', '.join(ENTITY_SOURCES)}, not {self.entities_from!r}")

    @property
    def from_ctakes(self) -> bool:
        """Task "re" on cTAKES's mentions as the entities."""
        return self.task == "re" and self.entities_from == "ctakes"


@dataclass
class KiwiAnnotator:
    config: AnnotatorConfig = field(default_factory=AnnotatorConfig)
    extractor: Extractor | None = None  # None: loaded from config.extractor by initialize()
    totals: Counts = field(default_factory=Counts)

    def initialize(self) -> None:
        if self.extractor is None:
            from kiwi_cas.extractors.registry import load_extractor

            self.extractor = load_extractor(self.config.extractor)

    def process(self, cas: Cas) -> Cas:
        self.process_batch([cas])
        return cas

    def process_batch(self, cases: Sequence[Cas]) -> list[Counts]:
        """Annotate CASes in place (one batched extractor call); what was written, per CAS."""
        self.initialize()
        cfg = self.config
        views = [self._view(c) for c in cases]
        notes: list[NoteInput] = []
        mentions_of: list[dict] = []
        for view in views:
            sentences, _ = cas_sentences(view, cfg.sentence_type)
            if cfg.ctakes:
                require_ctakes(view)
            remove_projections(view, remove_kiwi(view, keep_entities=cfg.task == "re" and not cfg.from_ctakes))
            given, mentions = None, {}
            if cfg.from_ctakes:
                given, mentions = ctakes_entities(view)
            elif cfg.task == "re":
                given = read_kiwi(view).entities
            mentions_of.append(mentions)
            if cfg.write_sentences:
                write_sentences(view, sentences)
            notes.append(NoteInput(view.sofa_string or "", sentences, given))
        found = extract_notes(self.extractor, notes)
        counts: list[Counts] = []
        for view, ext, mentions in zip(views, found, mentions_of):
            if cfg.task == "ner":
                ext.modifiers, ext.relations = [], []
            written = write_kiwi(view, ext, self.extractor.name, write_entities=cfg.task != "re" or cfg.from_ctakes)
            if cfg.ctakes:
                for key, twin in project(view, ext, existing=mentions).items():
                    kiwi_fs = written.fs_of.get(key)
                    if kiwi_fs is not None:
                        kiwi_fs.ctakesTwin = twin
            self.totals += written.counts
            counts.append(written.counts)
        return counts

    def collection_process_complete(self) -> Counts:
        return self.totals

    def _view(self, cas: Cas) -> Cas:
        try:
            view = cas.get_view(self.config.view)
        except KeyError as exc:
            raise InputError(f"the CAS has no view named {self.config.view!r}", "no_view") from exc
        if not view.typesystem.contains_type(schema.RELATION_TYPE):
            raise InputError("the CAS typesystem lacks the Kiwi types; load it with kiwi_cas.load_cas",
                             "no_kiwi_types")
        return view
