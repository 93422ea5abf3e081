"""Precision / recall / F1 for NER, modifiers and relations, as the Kiwi paper defines them.

- exact: same type and same (whitespace-trimmed) boundaries;
- relaxed: same type and overlapping boundaries. A prediction counts as correct when it
  overlaps some gold item of its type; a gold item counts as found when some prediction
  overlaps it (precision and recall are counted on their own sides).
- a relation is right when its entity (span + type) and its modifier (span + type) match.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

from kiwi_cas.core.spans import Document, Extraction, Span


@dataclass
class Score:
    tp_pred: int = 0  # predictions judged correct
    n_pred: int = 0
    tp_gold: int = 0  # gold items found
    n_gold: int = 0

    @property
    def precision(self) -> float:
        return self.tp_pred / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        return self.tp_gold / self.n_gold if self.n_gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: "Score") -> None:
        self.tp_pred += other.tp_pred
        self.n_pred += other.n_pred
        self.tp_gold += other.tp_gold
        self.n_gold += other.n_gold

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4)}


@dataclass
class Report:
    """micro and per-type scores: report[task][mode] -> {"micro": Score, "per_type": {label: Score}}."""

    scores: dict[str, dict[str, dict[str, Score]]] = field(default_factory=dict)

    def micro(self, task: str, mode: str) -> Score:
        return self.scores[task][mode]["__micro__"]

    def as_dict(self) -> dict:
        out: dict = {}
        for task, modes in self.scores.items():
            out[task] = {}
            for mode, per in modes.items():
                out[task][mode] = {
                    "micro": per["__micro__"].as_dict(),
                    "per_type": {k: v.as_dict() for k, v in sorted(per.items()) if k != "__micro__"},
                }
        return out


def trim(span: Span, text: str) -> tuple[int, int]:
    s, e = span.start, span.end
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def match_key(span: Span, text: str) -> tuple[int, int, str]:
    """What a span is scored by: its whitespace-trimmed offsets and its label."""
    s, e = trim(span, text)
    return (s, e, span.label)


def _overlap(a: tuple[int, int, str], b: tuple[int, int, str]) -> bool:
    return a[2] == b[2] and a[0] < b[1] and b[0] < a[1]


def _score_items(gold: set, pred: set, match_exact: bool, overlap) -> dict[str, Score]:
    per: dict[str, Score] = defaultdict(Score)
    gold_by_type: dict[str, list] = defaultdict(list)
    pred_by_type: dict[str, list] = defaultdict(list)
    for g in gold:
        gold_by_type[_label(g)].append(g)
    for p in pred:
        pred_by_type[_label(p)].append(p)
    for label in set(gold_by_type) | set(pred_by_type):
        gs, ps = gold_by_type[label], pred_by_type[label]
        sc = per[label]
        sc.n_gold, sc.n_pred = len(gs), len(ps)
        if match_exact:
            hits = len(set(gs) & set(ps))
            sc.tp_gold = sc.tp_pred = hits
        else:
            sc.tp_pred = sum(1 for p in ps if any(overlap(p, g) for g in gs))
            sc.tp_gold = sum(1 for g in gs if any(overlap(p, g) for p in ps))
    micro = Score()
    for sc in per.values():
        micro.add(sc)
    per["__micro__"] = micro
    return per


def _label(item) -> str:
    # spans are (s, e, label); relations are (entity_key, modifier_key)
    return item[2] if len(item) == 3 else f"{item[0][2]}->{item[1][2]}"


def _rel_overlap(a, b) -> bool:
    return _overlap(a[0], b[0]) and _overlap(a[1], b[1])


def match_items(ext: Extraction, text: str) -> dict[str, set]:
    """The scored items of an extraction per task: span keys (ner, modifier), key pairs (re)."""
    return {
        "ner": {match_key(s, text) for s in ext.entities},
        "modifier": {match_key(s, text) for s in ext.modifiers},
        "re": {(match_key(r.entity, text), match_key(r.modifier, text)) for r in ext.relations},
    }


def evaluate(gold: list[Document], pred: list[Document]) -> Report:
    """Score predicted documents against gold documents, matched by name."""
    pred_by_name = {d.name: d for d in pred}
    report = Report()
    for task in ("ner", "modifier", "re"):
        report.scores[task] = {"exact": defaultdict(Score), "relaxed": defaultdict(Score)}
    for g in gold:
        p = pred_by_name.get(g.name, Document(g.name, g.text))
        if p.text != g.text:
            raise ValueError(f"document {g.name!r}: predicted text differs from the gold text")
        gi, pi = match_items(g.annotations, g.text), match_items(p.annotations, g.text)
        for task in ("ner", "modifier", "re"):
            ov = _rel_overlap if task == "re" else _overlap
            for mode, exact in (("exact", True), ("relaxed", False)):
                for label, sc in _score_items(gi[task], pi[task], exact, ov).items():
                    report.scores[task][mode][label].add(sc)
    for task in report.scores:
        for mode in report.scores[task]:
            report.scores[task][mode] = dict(report.scores[task][mode])
    return report


def format_report(report: Report) -> str:
    """A plain-text table: micro P/R/F1 per task and mode, then per-type exact F1."""
    lines = [f"{'task':<10}{'mode':<9}{'P':>7}{'R':>7}{'F1':>7}{'gold':>7}{'pred':>7}"]
    for task in ("ner", "modifier", "re"):
        for mode in ("exact", "relaxed"):
            m = report.micro(task, mode)
            lines.append(f"{task:<10}{mode:<9}{m.precision:7.3f}{m.recall:7.3f}{m.f1:7.3f}{m.n_gold:7d}{m.n_pred:7d}")
    lines.append("")
    lines.append(f"{'per type (exact)':<28}{'P':>7}{'R':>7}{'F1':>7}{'gold':>7}")
    for task in ("ner", "modifier", "re"):
        for label, sc in sorted(report.scores[task]["exact"].items()):
            if label != "__micro__":
                lines.append(f"  {task + ':' + label:<26}{sc.precision:7.3f}{sc.recall:7.3f}{sc.f1:7.3f}{sc.n_gold:7d}")
    return "\n".join(lines)
