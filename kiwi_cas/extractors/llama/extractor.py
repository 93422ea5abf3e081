"""LlamaExtractor: Kiwi's two steps (NER per sentence, then RE per entity) on a causal LM.

Step 1 asks for the sentence rewritten with entity tags; step 2 asks, per entity, for the
sentence (entity pre-marked) with that entity's modifiers tagged, from its type's list.
Outputs are aligned back to character offsets (see ``align``); what cannot be placed is
dropped and counted, per text, in ``Extraction.unaligned``. The model knows nothing of UIMA.

A model trained here with ``--format joint`` (its templates hold a ``joint`` template)
answers both steps in one pass per sentence: its entity tags list their modifiers as
attributes, so a note costs one prompt per sentence.

A model folder is either a kiwi_cas LLaMA folder (``kiwi_model.json`` naming its base and
holding a LoRA adapter and its own templates) or any full causal-LM folder, e.g. the
official Kiwi LLaMA-3 weights, run with Kiwi's exact templates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from kiwi_cas.core import schema
from kiwi_cas.core.spans import Extraction, Relation, Span
from kiwi_cas.errors import ModelNotFoundError
from kiwi_cas.extractors.llama.align import align
from kiwi_cas.extractors.llama.backends import Backend, GenRequest, ModelSource, load_backend, resolve_backend
from kiwi_cas.extractors.llama.base_model import base_path, prepare_base
from kiwi_cas.extractors.llama.prompts import PromptSet, mark
from kiwi_cas.extractors.config import LlamaConfig
from kiwi_cas.extractors.settings import configure_threads, models_home, packaged_model

META_FILE = "kiwi_model.json"
DEFAULT_MODEL = "llama-mtsamples"


def default_model_path() -> Path:
    return packaged_model(DEFAULT_MODEL)


def model_source(model_dir: Path) -> tuple[ModelSource, dict]:
    """(what a backend loads, the folder's metadata) for a kiwi_cas LLaMA folder or a full causal-LM folder."""
    if not model_dir.is_dir():
        raise ModelNotFoundError(f"{model_dir}: no such LLaMA model folder")
    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"name": model_dir.name, "version": "external"}
    if not meta.get("adapter"):
        return ModelSource(model_dir), meta
    base = Path(meta.get("base", "smollm2-135m-instruct"))
    full = base if base.is_absolute() else models_home() / base
    if not full.exists() and full == base_path():
        prepare_base()
    return ModelSource(full, model_dir), meta


def _lead(template: str) -> str:
    """The output follows the prompt after one space when the prompt does not end in whitespace."""
    return "" if template.endswith((" ", "\n")) else " "


class LlamaExtractor:
    def __init__(self, backend: Backend, prompts: PromptSet, meta: dict, constrained: bool = True,
                 backend_name: str = "transformers") -> None:
        self.backend, self.prompts, self.meta = backend, prompts, meta
        self.backend_name = backend_name
        self.constrained = constrained
        self.name = f"llama:{meta.get('name', '?')}@{meta.get('version', '?')}"

    @classmethod
    def from_config(cls, config: LlamaConfig) -> "LlamaExtractor":
        configure_threads(config.threads)
        model_dir = Path(config.model) if config.model else default_model_path()
        source, meta = model_source(model_dir)
        meta.setdefault("name", model_dir.name)
        backend = resolve_backend(config.backend)
        generator = load_backend(backend, source, batch_size=config.batch_size, precision=config.precision)
        return cls(generator, PromptSet.load(model_dir), meta, config.constrained, backend)

    def _generate(self, reqs: list[GenRequest]) -> list[str]:
        return [_cut(o, self.prompts.stop) for o in self.backend.generate(reqs, self.constrained)]

    def extract(self, texts: Sequence[str], entities: Sequence[Sequence[Span]] | None = None,
                contexts: Sequence[str] | None = None) -> list[Extraction]:
        """One sentence per prompt, as Kiwi was trained: ``contexts`` are not read."""
        texts = list(texts)
        if self.prompts.joint is not None:
            return self._extract_joint(texts, entities)
        results = [Extraction() for _ in texts]
        if entities is None:
            lead = _lead(self.prompts.ner)
            reqs = [GenRequest(self.prompts.ner_prompt(t), lead + t, schema.ENTITY_LABELS) for t in texts]
            outputs = self._generate(reqs)
            for i, (text, out) in enumerate(zip(texts, outputs)):
                a = align(text, out, set(schema.ENTITY_LABELS))
                results[i].unaligned.update({f"ner_{k}": v for k, v in a.dropped.items()})
                results[i].entities = [Span(s, e, label) for s, e, label in a.spans]
        else:
            for i, ents in enumerate(entities):
                results[i].entities = list(ents)
        # step 2: one RE prompt per entity, issued once all NER results of the batch exist
        reqs, owners = [], []
        for i, (text, res) in enumerate(zip(texts, results)):
            for ent in res.entities:
                marked = mark(text, [(ent.start, ent.end, ent.label)])
                reqs.append(GenRequest(self.prompts.re_prompt_marked(marked, ent.label),
                                       _lead(self.prompts.re[ent.label]) + marked, schema.ALLOWED_PAIRS[ent.label]))
                owners.append((i, ent))
        outputs = self._generate(reqs) if reqs else []
        for (i, ent), out in zip(owners, outputs):
            a = align(texts[i], out, set(schema.ALLOWED_PAIRS[ent.label]), ignore={ent.label})
            res = results[i]
            res.unaligned.update({f"re_{k}": v for k, v in a.dropped.items()})
            for s, e, label in a.spans:
                if s < ent.end and ent.start < e and not (ent.start <= s and e <= ent.end):
                    res.unaligned["re_crosses_entity"] += 1
                    continue
                _link(res, ent, (s, e, label))
        return results

    def _extract_joint(self, texts: list[str], entities: Sequence[Sequence[Span]] | None) -> list[Extraction]:
        """One prompt per sentence; entity tags carry their modifiers as attributes.

        With ``entities`` given, the constraint makes the model tag exactly those (it only
        chooses their attributes), and a sentence without entities is not prompted at all.
        Where given entities overlap each other no single tagging can hold them all: the model
        then tags freely and each modifier link moves to the given entity of the same type that
        overlaps its tagged one most; links matching none are dropped (counted).
        """
        lead = _lead(self.prompts.joint or "")
        results = [Extraction(entities=list(entities[i]) if entities is not None else []) for i in range(len(texts))]
        reqs, owners = [], []
        for i, text in enumerate(texts):
            forced = None
            if entities is not None:
                given = sorted(entities[i], key=lambda x: (x.start, x.end))
                if not given:
                    continue
                if all(a.end <= b.start for a, b in zip(given, given[1:])):
                    forced = tuple((x.start + len(lead), x.end + len(lead), x.label) for x in given)
            reqs.append(GenRequest(self.prompts.joint_prompt(text), lead + text, schema.ENTITY_LABELS,
                                   schema.ALLOWED_PAIRS, forced))
            owners.append(i)
        for i, out in zip(owners, self._generate(reqs) if reqs else []):
            a = align(texts[i], out, set(schema.ENTITY_LABELS), attributes=schema.ALLOWED_PAIRS)
            res = results[i]
            res.unaligned.update({f"joint_{k}": v for k, v in a.dropped.items()})
            if entities is None:
                res.entities = [Span(s, e, label) for s, e, label in a.spans]
            by_key = {x.key(): x for x in res.entities}
            for ent_key, mod_key in a.links:
                ent = by_key.get(ent_key) or _best_overlap(ent_key, res.entities)
                if ent is None:
                    res.unaligned["joint_entity_not_given"] += 1
                    continue
                _link(res, ent, mod_key)
        return results


def _link(res: Extraction, entity: Span, modifier: tuple[int, int, str]) -> None:
    """Add the relation entity -> modifier, reusing the modifier span if another entity found it too."""
    mod = next((m for m in res.modifiers if m.key() == modifier), None)
    if mod is None:
        mod = Span(*modifier)
        res.modifiers.append(mod)
    if not any(r.entity == entity and r.modifier == mod for r in res.relations):
        res.relations.append(Relation(entity, mod))


def _best_overlap(key: tuple[int, int, str], entities: list[Span]) -> Span | None:
    s, e, label = key
    best = max(((min(e, x.end) - max(s, x.start), x) for x in entities if x.label == label),
               key=lambda t: t[0], default=None)
    return best[1] if best is not None and best[0] > 0 else None


def _cut(output: str, stop: str) -> str:
    """Kiwi's templates end the answer with a textual stop marker ("<EOS>"); drop it and what follows."""
    return output.split(stop, 1)[0] if stop else output
