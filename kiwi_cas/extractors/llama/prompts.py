"""Prompt templates: Kiwi's exact ones by default, or a model folder's own.

``kiwi_prompts.json`` (beside this file) holds the templates used with the released Kiwi
LLaMA weights: one NER template and one RE template per entity type, ``{}`` marking where
the sentence goes. A model folder may carry its own ``kiwi_prompts.json`` of the same
shape (a model fine-tuned here uses shorter ones); it then wins. Such a file may also hold a
``joint`` template: the model then answers NER and RE in one pass per sentence, each entity
tag listing its modifiers as attributes (``<span class="problem" negation="no">``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kiwi_cas.core import schema

DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "kiwi_prompts.json"
TEMPLATE_FILE = "kiwi_prompts.json"


@dataclass(frozen=True)
class PromptSet:
    ner: str
    re: dict[str, str]  # entity label -> template
    stop: str = "<EOS>"
    joint: str | None = None  # one-pass template: entity tags carry their modifiers as attributes

    @classmethod
    def load(cls, model_dir: Path | None = None) -> "PromptSet":
        path = DEFAULT_TEMPLATES
        if model_dir is not None and (Path(model_dir) / TEMPLATE_FILE).exists():
            path = Path(model_dir) / TEMPLATE_FILE
        data = json.loads(path.read_text(encoding="utf-8"))
        missing = [e for e in schema.ENTITY_LABELS if e not in data["re"]]
        if missing:
            raise ValueError(f"{path}: no RE template for {missing}")
        return cls(ner=data["ner"], re=dict(data["re"]), stop=data.get("stop", "<EOS>"), joint=data.get("joint"))

    def ner_prompt(self, sentence: str) -> str:
        return self.ner.replace("{}", sentence, 1)

    def joint_prompt(self, sentence: str) -> str:
        if self.joint is None:
            raise ValueError("these templates have no one-pass (joint) template")
        return self.joint.replace("{}", sentence, 1)

    def re_prompt(self, sentence: str, entity_start: int, entity_end: int, entity_label: str) -> str:
        return self.re_prompt_marked(mark(sentence, [(entity_start, entity_end, entity_label)]), entity_label)

    def re_prompt_marked(self, marked_sentence: str, entity_label: str) -> str:
        """The RE prompt for a sentence whose main entity is already wrapped in its span tag."""
        return self.re[entity_label].replace("{}", marked_sentence, 1)


def mark(text: str, spans: list[tuple[int, int, str]],
         attributes: dict[tuple[int, int, str], list[tuple[str, str]]] | None = None) -> str:
    """``text`` with spans wrapped in ``<span class="label">...</span>``; nested spans nest properly.

    Spans that cross each other (neither nested nor disjoint) are skipped. ``attributes`` adds
    ``name="value"`` pairs to a span's opening tag (the joint format's modifiers).
    """
    attributes = attributes or {}
    events: list[tuple[int, int, int, str]] = []  # (offset, order, -length or length, tag)
    kept: list[tuple[int, int]] = []
    for s, e, label in sorted(spans, key=lambda x: (x[0], -x[1])):
        if any(s < ke and ks < e and not (ks <= s and e <= ke) for ks, ke in kept):
            continue
        kept.append((s, e))
        attrs = "".join(f' {name}="{value}"' for name, value in attributes.get((s, e, label), []))
        events.append((s, 1, -(e - s), f'<span class="{label}"{attrs}>'))
        events.append((e, 0, (e - s), "</span>"))
    out, pos = [], 0
    for off, _, _, tag in sorted(events):
        out.append(text[pos:off])
        out.append(tag)
        pos = off
    out.append(text[pos:])
    return "".join(out)
