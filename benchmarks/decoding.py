"""Score BERT decoding rules by cross-validation, on the fold models ``crossval.py --keep-models`` left.

A decoding rule (relation threshold, linking a lone modifier to its best entity, dropping
modifiers left unlinked, a bias on the O tag, the closed-class boundary rule) changes no weight, so every rule is scored on
the same five held-out folds without training again: each fold's encoder outputs are computed
once and reused for every rule. Prints one row per rule: mean ± standard deviation over folds.

    python benchmarks/crossval.py -o cv/ --keep-models      # once (~50 min on 2 cores)
    python benchmarks/decoding.py -o cv/ [--rule NAME ...]

Choosing the shipped rule from these means fits one or two numbers to 96 notes; the spread
over folds says how far a difference can be trusted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crossval import METRICS, fold_notes  # noqa: E402

#: rule name -> meta fields it sets (everything else as the model was trained); the key
#: ``function_words`` is not a meta field but ``extract_notes``'s switch for the closed-class rule
#: of ``core.boundaries``, on in every other rule
RULES: dict[str, dict] = {
    "plain (threshold 0.5)": {},
    "entities may end in a function word": {"function_words": False},
    "threshold 0.4": {"relation_threshold": 0.4},
    "threshold 0.3": {"relation_threshold": 0.3},
    "threshold 0.6": {"relation_threshold": 0.6},
    "attach lone modifier >= 0.2": {"attach_floor": 0.2},
    "attach lone modifier >= 0.1": {"attach_floor": 0.1},
    "attach lone modifier >= 0.05": {"attach_floor": 0.05},
    "drop unlinked modifiers": {"drop_unlinked_modifiers": True},
    "attach >= 0.1, drop the rest": {"attach_floor": 0.1, "drop_unlinked_modifiers": True},
    "attach >= 0.05, drop the rest": {"attach_floor": 0.05, "drop_unlinked_modifiers": True},
    "entity O bias -0.5": {"entity_o_bias": -0.5},
    "entity O bias -1.0": {"entity_o_bias": -1.0},
    "entity O bias +0.5": {"entity_o_bias": 0.5},
    "modifier O bias -0.5": {"modifier_o_bias": -0.5},
    "modifier O bias -1.0": {"modifier_o_bias": -1.0},
    "modifier O bias -0.5, attach >= 0.1, drop the rest": {"modifier_o_bias": -0.5, "attach_floor": 0.1,
                                                          "drop_unlinked_modifiers": True},
}


class CachedRuntime:
    """A runtime that encodes each distinct padded batch once; decoding rules only read its outputs."""

    def __init__(self, runtime) -> None:
        self.runtime, self.meta, self.tokenizer = runtime, runtime.meta, runtime.tokenizer
        self._cache: dict[bytes, object] = {}

    def encode(self, ids, mask, case_types=None):
        key = ids.tobytes() + mask.tobytes() + bytes(str(ids.shape), "ascii")
        if key not in self._cache:
            self._cache[key] = self.runtime.encode(ids, mask, case_types)
        return self._cache[key]

    def score_pairs(self, encoded, pairs):
        return self.runtime.score_pairs(encoded, pairs)


def score(extractor, test, function_words: bool = True) -> dict:
    from kiwi_cas.core.evaluate import evaluate
    from kiwi_cas.core.notes import NoteInput, extract_notes
    from kiwi_cas.core.spans import Document

    e2e = extract_notes(extractor, [NoteInput(d.text) for d in test], function_words)
    given = extract_notes(extractor, [NoteInput(d.text, entities=list(d.annotations.entities)) for d in test],
                          function_words)
    r = evaluate(test, [Document(d.name, d.text, p) for d, p in zip(test, e2e)]).as_dict()
    g = evaluate(test, [Document(d.name, d.text, p) for d, p in zip(test, given)]).as_dict()
    return {"ner": r["ner"]["exact"]["micro"]["f1"], "modifier": r["modifier"]["exact"]["micro"]["f1"],
            "re": r["re"]["exact"]["micro"]["f1"], "re_given": g["re"]["exact"]["micro"]["f1"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, required=True, help="the crossval.py --keep-models folder")
    ap.add_argument("--rule", action="append", choices=list(RULES), help="score only these rules")
    args = ap.parse_args()

    from kiwi_cas.extractors.bert.extractor import BertExtractor
    from kiwi_cas.extractors.bert.torch_runtime import TorchRuntime

    models = sorted(args.out.glob("fold-*-model"), key=lambda p: int(p.name.split("-")[1]))
    if not models:
        sys.exit(f"{args.out}: no fold models; run crossval.py -o {args.out} --keep-models first")
    k = json.loads((args.out / "fold-0.json").read_text())["folds"]
    rules = args.rule or list(RULES)
    results: dict[str, list[dict]] = {rule: [] for rule in rules}
    for model in models:
        fold = int(model.name.split("-")[1])
        _, test = fold_notes(k, fold)
        runtime = CachedRuntime(TorchRuntime(model))
        trained = runtime.meta
        for rule in rules:
            fields = dict(RULES[rule])
            function_words = fields.pop("function_words", True)
            runtime.meta = dataclasses.replace(trained, **fields)
            results[rule].append(score(BertExtractor(runtime), test, function_words))
        print(f"fold {fold} scored", file=sys.stderr, flush=True)
    print(f"{len(models)} of {k} folds; exact F1, mean ± std over folds (mean paired change against the first rule)")
    print("| rule | " + " | ".join(label for label, _ in METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for rule in rules:
        cells = []
        for _, key in METRICS:
            values = [r[key] for r in results[rule]]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            change = statistics.mean(v - r[key] for v, r in zip(values, results[rules[0]]))
            cells.append(f"{statistics.mean(values):.3f} ± {std:.3f} ({change:+.3f})")
        print(f"| {rule} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
