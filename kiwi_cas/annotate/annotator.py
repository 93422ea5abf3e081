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

from kiwi_cas.cas.ctakes import ASSERTION_MODES, ctakes_entities, project, remove_projections, require_ctakes
from kiwi_cas.cas.provenance import RunRecorder, undo_previous_runs
from kiwi_cas.cas.sentences import cas_sentences
from kiwi_cas.cas.writer import read_kiwi, remove_kiwi, write_kiwi, write_sentences
from kiwi_cas.core import schema
from kiwi_cas.core.notes import NoteInput, extract_notes
from kiwi_cas.core.spans import Counts
from kiwi_cas.errors import InputError, UsageError
from kiwi_cas.extractors.base import Extractor
from kiwi_cas.extractors.config import BertConfig, ExtractorConfig

TASKS = ("all", "ner", "re")
DEFAULT_VIEW = "_InitialView"
ENTITY_SOURCES = ("kiwi", "ctakes")


@dataclass(frozen=True)
class AnnotatorConfig:
    """What to find and where to write it; the extractor's own settings travel in ``extractor``."""

    extractor: ExtractorConfig = field(default_factory=BertConfig)
    task: str = "all"  # all: entities+modifiers+relations; ner: entities only; re: keep entities, add the rest
    view: str | None = None  # None: _InitialView, skipped with a warning when it holds no text
    sentence_type: str | None = None
    write_sentences: bool = False
    ctakes: bool = False  # also write the findings in cTAKES types
    entities_from: str = "kiwi"  # task "re": take the given entities from Kiwi or cTAKES annotations
    ctakes_assertions: str = "keep"  # keep | fill | overwrite: Kiwi's values on mentions kiwi_cas did not create
    require_mentions: bool = False  # --entities-from ctakes: a CAS with no usable cTAKES mention fails

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UsageError(f"--task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.entities_from not in ENTITY_SOURCES:
            raise UsageError(f"--entities-from must be one of {', '.join(ENTITY_SOURCES)}, not {self.entities_from!r}")
        if self.entities_from == "ctakes" and self.task != "re":
            raise UsageError("--entities-from ctakes needs --task re (with --task all or ner, Kiwi finds its own "
                             "entities)")
        if self.ctakes_assertions not in ASSERTION_MODES:
            raise UsageError(f"--ctakes-assertions must be one of {', '.join(ASSERTION_MODES)}")
        if self.ctakes_assertions != "keep" and not self.ctakes:
            raise UsageError("--ctakes-assertions needs --ctakes (it decides what goes into cTAKES's features)")
        if self.require_mentions and not self.from_ctakes:
            raise UsageError("--require-mentions needs --task re --entities-from ctakes")

    @property
    def view_name(self) -> str:
        return self.view or DEFAULT_VIEW

    @property
    def from_ctakes(self) -> bool:
        """Task "re" on cTAKES's mentions as the entities."""
        return self.task == "re" and self.entities_from == "ctakes"


@dataclass
class _Prepared:
    """One view, read and ready for the extractor."""

    note: NoteInput
    mentions: dict = field(default_factory=dict)  # Kiwi entity key -> the cTAKES mention it came from
    warnings: list[str] = field(default_factory=list)
    skip: bool = False  # a view without text


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
        views = [self._view(c) for c in cases]
        if self.config.view is not None and any(v.sofa_string is None for v in views):
            raise InputError(f"view {self.config.view!r} holds no text (its sofa is a URI or binary data)",
                             "view_without_text")
        prepared = [self._prepare(view) for view in views]  # read: sentences, given entities; undo the last run
        found = extract_notes(self.extractor, [p.note for p in prepared])  # predict: text in, spans out
        counts = [self._set_annotations(view, ext, p) for view, ext, p in zip(views, found, prepared)]
        for c in counts:
            self.totals += c
        return counts

    def _prepare(self, view: Cas) -> "_Prepared":
        cfg = self.config
        if view.sofa_string is None:  # nothing to read: the CAS goes out as it came in
            return _Prepared(NoteInput("", []), skip=True, warnings=[
                f"view {cfg.view_name!r} holds no text (its sofa is a URI or binary data); written unchanged "
                "(name a view with --view)"])
        sentences, _ = cas_sentences(view, cfg.sentence_type)
        if cfg.ctakes:
            require_ctakes(view)
        recorded = undo_previous_runs(view)  # the ownership rule: undo exactly what the last run did
        twins = remove_kiwi(view, keep_entities=cfg.task == "re" and not cfg.from_ctakes)
        if not recorded:
            remove_projections(view, twins)  # outputs of kiwi_cas 0.1.0, which kept no record
        prepared = _Prepared(NoteInput(view.sofa_string, sentences))
        if cfg.from_ctakes:
            prepared.note.entities, prepared.mentions, unused = ctakes_entities(view)
            if not prepared.note.entities:
                message = _no_mentions(unused)
                if cfg.require_mentions:
                    raise InputError(message, "no_ctakes_mentions")
                prepared.warnings.append(message)
        elif cfg.task == "re":
            prepared.note.entities = read_kiwi(view).entities
        if cfg.write_sentences:
            write_sentences(view, sentences)
        return prepared

    def _set_annotations(self, view: Cas, ext, prepared: "_Prepared") -> Counts:
        cfg = self.config
        if prepared.skip:
            return Counts(documents=1, warnings=prepared.warnings)
        if cfg.task == "ner":
            ext.modifiers, ext.relations = [], []
        written = write_kiwi(view, ext, self.extractor.name, write_entities=cfg.task != "re" or cfg.from_ctakes)
        recorder = RunRecorder(view)
        if cfg.ctakes:
            for key, twin in project(view, ext, recorder, cfg.ctakes_assertions, given=prepared.mentions).items():
                kiwi_fs = written.fs_of.get(key)
                if kiwi_fs is not None:
                    kiwi_fs.ctakesTwin = twin
        recorder.commit(self.extractor.name)
        written.counts.warnings = prepared.warnings
        return written.counts

    def collection_process_complete(self) -> Counts:
        return self.totals

    def _view(self, cas: Cas) -> Cas:
        try:
            view = cas.get_view(self.config.view_name)
        except KeyError as exc:
            raise InputError(f"the CAS has no view named {self.config.view_name!r} (it has: "
                             f"{', '.join(repr(v.sofa.sofaID) for v in cas.views)})", "no_view") from exc
        if not view.typesystem.contains_type(schema.RELATION_TYPE):
            raise InputError("the CAS typesystem lacks the Kiwi types; load it with kiwi_cas.load_cas",
                             "no_kiwi_types")
        return view


def _no_mentions(unused) -> str:
    seen = ", ".join(f"{name.rsplit('.', 1)[-1]} {n}" for name, n in unused.most_common(5))
    return ("--entities-from ctakes: no usable cTAKES mention in this CAS (" + (f"cTAKES annotations seen: {seen}"
            if seen else "no cTAKES annotations at all") + "); nothing to attach modifiers to")
