"""LlamaExtractor: Kiwi's two steps (NER per sentence, then RE per entity) on a causal LM.

Step 1 asks for the sentence rewritten with entity tags; step 2 asks, per entity, for the
sentence (entity pre-marked) with that entity's modifiers tagged, from its type's list.
Outputs are aligned back to character offsets (see ``align``); what cannot be placed is
dropped and counted in ``self.dropped``. The model knows nothing of UIMA.

A model folder is either a kiwi_cas LLaMA folder (``kiwi_model.json`` naming its base and
holding a LoRA adapter and its own templates) or any full causal-LM folder, e.g. the
official Kiwi LLaMA-3 weights, run with Kiwi's exact templates.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Sequence

from kiwi_cas import schema
from kiwi_cas.extractors.llama.align import align
from kiwi_cas.extractors.llama.backends import GenRequest, TransformersBackend, cuda_and_vllm
from kiwi_cas.extractors.llama.base_model import base_path, models_home
from kiwi_cas.extractors.llama.prompts import PromptSet, mark
from kiwi_cas.spans import Extraction, Relation, Span

META_FILE = "kiwi_model.json"
DEFAULT_MODEL = "llama-mtsamples"


def default_model_path() -> Path:
    return Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL


def _lead(template: str) -> str:
    """The output follows the prompt after one space when the prompt does not end in whitespace."""
    return "" if template.endswith((" ", "\n")) else " "


class LlamaExtractor:
    def __init__(self, model_dir: str | Path | None = None, backend: str = "auto", constrained: bool = True,
                 batch_size: int = 16) -> None:
        model_dir = Path(model_dir) if model_dir else default_model_path()
        if not model_dir.exists():
            raise FileNotFoundError(f"{model_dir}: no such LLaMA model folder")
        meta_path = model_dir / META_FILE
        self.meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"name": model_dir.name,
                                                                                  "version": "external"}
        adapter = None
        full = model_dir
        if self.meta.get("adapter"):
            base = self.meta.get("base", "smollm2-135m-instruct")
            full = Path(base) if Path(base).is_absolute() else (models_home() / base)
            if not full.exists() and full == base_path():
                from kiwi_cas.extractors.llama.base_model import prepare_base

                prepare_base()
            adapter = model_dir
        self.prompts = PromptSet.load(model_dir)
        if backend == "auto":
            backend = "vllm" if cuda_and_vllm() else "transformers"
        if backend == "vllm":
            from kiwi_cas.extractors.llama.backends import VllmBackend

            if adapter is not None:
                full = merged_folder(full, adapter)
            self.backend = VllmBackend(full)
        elif backend == "transformers":
            self.backend = TransformersBackend(full, adapter, batch_size=batch_size)
        else:
            raise ValueError(f"unknown backend {backend!r}")
        self.backend_name = backend
        self.constrained = constrained
        self.dropped: Counter = Counter()
        self.name = f"llama:{self.meta.get('name', model_dir.name)}@{self.meta.get('version', '?')}"

    def _generate(self, reqs: list[GenRequest]) -> list[str]:
        return [_cut(o, self.prompts.stop) for o in self.backend.generate(reqs, self.constrained)]

    def extract(self, texts: Sequence[str], entities: Sequence[Sequence[Span]] | None = None) -> list[Extraction]:
        texts = list(texts)
        results = [Extraction() for _ in texts]
        if entities is None:
            lead = _lead(self.prompts.ner)
            reqs = [GenRequest(self.prompts.ner_prompt(t), lead + t, schema.ENTITY_LABELS) for t in texts]
            outputs = self._generate(reqs)
            for i, (text, out) in enumerate(zip(texts, outputs)):
                a = align(text, out, set(schema.ENTITY_LABELS))
                self.dropped.update({f"ner_{k}": v for k, v in a.dropped.items()})
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
            self.dropped.update({f"re_{k}": v for k, v in a.dropped.items()})
            res = results[i]
            known = {m.key(): m for m in res.modifiers}
            for s, e, label in a.spans:
                if s < ent.end and ent.start < e and not (ent.start <= s and e <= ent.end):
                    self.dropped["re_crosses_entity"] += 1
                    continue
                mod = known.get((s, e, label))
                if mod is None:
                    mod = known[(s, e, label)] = Span(s, e, label)
                    res.modifiers.append(mod)
                res.relations.append(Relation(ent, mod))
        return results


def _cut(output: str, stop: str) -> str:
    """Kiwi's templates end the answer with a textual stop marker ("<EOS>"); drop it and what follows."""
    return output.split(stop, 1)[0] if stop else output


def merged_folder(base: Path, adapter: Path) -> Path:
    """A full model folder (base + LoRA merged) for vLLM, cached beside the adapter's base."""
    target = models_home() / f"merged-{adapter.name}"
    if (target / "config.json").exists():
        return target
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.save_pretrained(target, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(target)
    return target
