"""K-fold cross-validation of a training recipe over the 96 MTSamples training notes.

Each fold trains on the other notes with no dev set (all epochs, the last kept: no fold is
used to choose anything), then scores the held-out fold end to end and with gold entities.
Prints mean ± standard deviation over the folds that have finished; per-fold results go to
``OUT/fold-K.json`` so folds can run separately (``--fold K``), e.g. on different machines.

    python benchmarks/crossval.py -o cv/ [--folds 5] [--epochs 12] [--fold K] [--context-tokens N]
                                        [--augment SHARE] [--lr LR] [--tune-word-embeddings] [--case-types]
                                        [--no-crf] [--rel-weight W] [--order-seed S] [--base-model DIR]
                                        [--teacher DIR_WITH_{fold}] [--distill-weight W] [--keep-models]

With ``--keep-models`` each fold's model stays in ``OUT/fold-K-model/``, so that decoding
rules can be scored on the same folds without training again (``benchmarks/decoding.py``).

One fold takes 10-15 min on a 2-core CPU with nothing else running (12 epochs over ~77 notes; the
CRF default costs about the same as ``--no-crf``, per-token cross-entropy).

``--extractor llama`` runs the shipped LLaMA recipe instead (joint format, up to 5,000 pairs,
2 epochs of LoRA at lr 6e-4 on SmolLM2-135M, adapter 0.5's; ``--epochs 3 --lr 2e-4`` is adapter
0.4's, ``--epochs 2 --lr 2e-4`` adapter 0.3's): ~1.3-1.5 h of training and 5-8 min of annotation
per fold on the same CPU.

    python benchmarks/crossval.py -o cv-llama/ --extractor llama [--fold K] [--keep-models]

``--train-only`` trains and keeps the fold models without scoring them, so that training can run
on a GPU machine and scoring (``--rescore``) elsewhere; ``--lr``, ``--lora-r``, ``--batch-size``,
``--max-minutes`` and ``--train-precision`` change the LLaMA recipe as ``train llama`` does:

    python benchmarks/crossval.py -o cv-llama-e4/ --extractor llama --epochs 4 --fold K --train-only
    python benchmarks/crossval.py -o cv-llama-e4/ --extractor llama --fold K --rescore
    python benchmarks/crossval.py -o cv-full/ --extractor llama --fold K --epochs 2 --lora-r 0 --lr 5e-5 \
        --train-precision bf16 --keep-models   # every weight trained instead of a LoRA adapter

A LLaMA fold whose model is kept (``--keep-models``, ``--train-only``) checkpoints its training in
``OUT/fold-K-model/`` every 50 steps; run the same command again after a kill and it continues
(a fold model already trained with the same recipe is scored without training again).

A change to the LLaMA decoder is scored on the same folds without training again by
``--rescore`` (the models kept by ``--keep-models``; ~5 min per fold): results go to
``OUT/rescored-PRECISION-fold-K.json`` (the precision the decoder ran in, ``--precision``),
beside the fold's first result.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from kiwi_cas.extractors.bert.train_config import HEAD_LR_FACTOR, TrainConfig
from kiwi_cas.extractors.llama.precision import PRECISIONS
from kiwi_cas.extractors.llama.train_config import TRAIN_PRECISIONS

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtsamples" / "train"
METRICS = (("NER exact F1", "ner"), ("modifiers exact F1", "modifier"), ("RE e2e exact F1", "re"),
           ("RE given gold entities F1", "re_given"))


def folds(n: int, k: int, seed: int = 0) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [sorted(order[i::k]) for i in range(k)]


def fold_notes(k: int, fold: int):
    """(train notes, held-out notes) of one fold, split the same way in every script."""
    from kiwi_cas.formats.documents import load_documents

    docs = load_documents(TRAIN)
    test_idx = set(folds(len(docs), k)[fold])
    return ([d for i, d in enumerate(docs) if i not in test_idx], [d for i, d in enumerate(docs) if i in test_idx])


def run_fold(k: int, fold: int, epochs: int, out: Path, recipe: dict, keep_model: bool = False,
             base_model: str | None = None) -> dict:
    """One fold of the BERT recipe; ``recipe`` holds the ``TrainConfig`` fields that differ by lever
    (context_tokens, augment, lr, tune_word_embeddings, crf, rel_weight, order_seed, case_types, teacher,
    distill_weight), stored in the fold's result
    with ``base_model`` (a local encoder folder, as ``train bert --base-model``; None: the packaged MiniLM)."""
    from kiwi_cas.core.evaluate import evaluate
    from kiwi_cas.core.notes import NoteInput, extract_notes
    from kiwi_cas.core.spans import Document
    from kiwi_cas.extractors.config import BertConfig
    from kiwi_cas.extractors.bert.extractor import BertExtractor
    from kiwi_cas.extractors.bert.train import TrainConfig, train

    train_docs, test = fold_notes(k, fold)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        model = out / f"fold-{fold}-model" if keep_model else Path(tmp) / "model"
        train(train_docs, [], model, TrainConfig(epochs=epochs, head_lr=HEAD_LR_FACTOR * recipe["lr"], **recipe),
              base_model=base_model, log=lambda line: print(line, flush=True))
        extractor = BertExtractor.from_config(BertConfig(model=model, runtime="torch"))
        e2e = extract_notes(extractor, [NoteInput(d.text) for d in test])
        given = extract_notes(extractor, [NoteInput(d.text, entities=list(d.annotations.entities)) for d in test])
    r = evaluate(test, [Document(d.name, d.text, p) for d, p in zip(test, e2e)]).as_dict()
    g = evaluate(test, [Document(d.name, d.text, p) for d, p in zip(test, given)]).as_dict()
    result = {"fold": fold, "folds": k, "epochs": epochs, **recipe, "base_model": base_model,
              "train_notes": len(train_docs), "test_notes": len(test),
              "minutes": round((time.time() - t0) / 60, 1), "ner": r["ner"]["exact"]["micro"]["f1"],
              "modifier": r["modifier"]["exact"]["micro"]["f1"], "re": r["re"]["exact"]["micro"]["f1"],
              "re_given": g["re"]["exact"]["micro"]["f1"]}
    (out / f"fold-{fold}.json").write_text(json.dumps(result, indent=1))
    return result


def run_llama_fold(k: int, fold: int, epochs: int | None, out: Path, keep_model: bool = False, rescore: bool = False,
                   precision: str = "auto", recipe_changes: dict | None = None,
                   train_only: bool = False) -> dict | None:
    """One fold of the shipped LLaMA recipe (``LlamaTrainConfig``'s defaults, ``epochs`` and ``recipe_changes``
    if given); with ``rescore`` the fold's kept model is decoded and scored again, untrained, and its own
    ``kiwi_model.json`` says which recipe it was trained with; with ``train_only`` the fold's model is
    trained and kept, not scored (None)."""
    from dataclasses import asdict
    from kiwi_cas.core.boundaries import fix_boundaries
    from kiwi_cas.core.evaluate import evaluate
    from kiwi_cas.core.notes import NoteInput, extract_notes
    from kiwi_cas.core.spans import Document
    from kiwi_cas.extractors.config import LlamaConfig
    from kiwi_cas.extractors.llama.train import LlamaTrainConfig, train_llama
    from kiwi_cas.extractors.registry import load_extractor

    train_docs, test = fold_notes(k, fold)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        model = out / f"fold-{fold}-model" if keep_model or rescore else Path(tmp) / "model"
        if rescore:
            if not (model / "kiwi_model.json").exists():
                raise SystemExit(f"{model}: no kept model to rescore (train the fold with --keep-models)")
            recipe = json.loads((model / "kiwi_model.json").read_text())["training"]["config"]
        else:
            config = LlamaTrainConfig(**(recipe_changes or {}))
            if epochs is not None:
                config.epochs = epochs
            trained = model / "kiwi_model.json"
            meta = json.loads(trained.read_text()) if keep_model and trained.exists() else None
            if meta and meta["training"]["config"] == asdict(config) and not meta["training"]["stopped_early"]:
                print(f"{model}: trained already with this recipe; scoring it", flush=True)
            else:
                # a kept fold model's folder holds the run's checkpoint: a killed fold continues where it stopped
                meta = train_llama(train_docs, model, config, resume=keep_model,
                                   source=f"cross-validation fold {fold} of {k}",
                                   log=lambda line: print(line, flush=True))
            if train_only:
                return None
            recipe = asdict(config)
        # the training's own seconds: they span the sittings of a resumed fold
        train_minutes = None if rescore else round(meta["training"]["seconds"] / 60, 1)
        extractor = load_extractor(LlamaConfig(model=model, backend="transformers", precision=precision))
        t1 = time.time()
        # decoded without the closed-class rule first, so that one run scores it both ways
        # (folds 0-2 of the README table were scored before the rule existed)
        plain = extract_notes(extractor, [NoteInput(d.text) for d in test], function_words=False)
        seconds_per_note = (time.time() - t1) / len(test)
        e2e = [fix_boundaries(d.text, p) for d, p in zip(test, plain)]
        given = extract_notes(extractor, [NoteInput(d.text, entities=list(d.annotations.entities)) for d in test])
    r = evaluate(test, [Document(d.name, d.text, p) for d, p in zip(test, e2e)]).as_dict()
    r0 = evaluate(test, [Document(d.name, d.text, p) for d, p in zip(test, plain)]).as_dict()
    g = evaluate(test, [Document(d.name, d.text, p) for d, p in zip(test, given)]).as_dict()
    result = {"fold": fold, "folds": k, "extractor": "llama", "format": recipe["format"],
              "epochs": recipe["epochs"], "batch_size": recipe.get("batch_size"), "lr": recipe.get("lr"),
              "lora_r": recipe.get("lora_r"), "train_precision": recipe.get("precision", "fp32"),
              "train_notes": len(train_docs), "test_notes": len(test),
              "train_minutes": train_minutes, "rescored": rescore,
              "precision": extractor.backend.precision,
              "seconds_per_note_e2e": round(seconds_per_note, 2), "minutes": round((time.time() - t0) / 60, 1),
              "ner": r["ner"]["exact"]["micro"]["f1"], "modifier": r["modifier"]["exact"]["micro"]["f1"],
              "re": r["re"]["exact"]["micro"]["f1"], "re_given": g["re"]["exact"]["micro"]["f1"],
              "ner_without_closed_class_rule": r0["ner"]["exact"]["micro"]["f1"],
              "re_without_closed_class_rule": r0["re"]["exact"]["micro"]["f1"]}
    name = f"rescored-{extractor.backend.precision}-fold-{fold}.json" if rescore else f"fold-{fold}.json"
    (out / name).write_text(json.dumps(result, indent=1))
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    bert = TrainConfig()  # the BERT recipe's defaults, as `train bert` takes them
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--extractor", default="bert", choices=["bert", "llama"], help="which training recipe")
    ap.add_argument("--epochs", type=int, default=None,
                    help=f"default: {bert.epochs} (bert), the shipped recipe's (llama)")
    ap.add_argument("--fold", type=int, default=None, help="run only this fold (0-based)")
    ap.add_argument("--context-tokens", type=int, default=bert.context_tokens,
                    help="left context read before each sentence")
    ap.add_argument("--augment", type=float, default=bert.augment, help="share of entity mentions replaced each epoch")
    ap.add_argument("--lr", type=float, default=None,
                    help=f"bert: encoder learning rate (heads: {HEAD_LR_FACTOR}x; default {bert.lr}), as train bert "
                         "--lr; llama: as train llama --lr")
    ap.add_argument("--tune-word-embeddings", action="store_true",
                    help="fine-tune the word embeddings too, as train bert --tune-word-embeddings")
    ap.add_argument("--case-types", action="store_true",
                    help="feed each token's letter case as its token type, as train bert --case-types")
    ap.add_argument("--crf", action=argparse.BooleanOptionalAction, default=bert.crf,
                    help="train the tag layers as CRFs (default), or with per-token cross-entropy (--no-crf), "
                         "as train bert --crf/--no-crf")
    ap.add_argument("--rel-weight", type=float, default=bert.rel_weight,
                    help="relation loss weight, as train bert --rel-weight")
    ap.add_argument("--order-seed", type=int, default=None,
                    help="seed of batch order and dropout, apart from the initial weights' (default: the same)")
    ap.add_argument("--base-model", default=None,
                    help="local Hugging Face encoder folder to fine-tune, as train bert --base-model "
                         "(default: the packaged MiniLM)")
    ap.add_argument("--teacher", default=None,
                    help="distil from this model folder, as train bert --teacher; '{fold}' in it is replaced by the "
                         "fold number, so each fold learns from a teacher that never saw its held-out notes "
                         "(e.g. cv-mpnet/fold-{fold}-model from --keep-models)")
    ap.add_argument("--distill-weight", type=float, default=bert.distill_weight, help="as train bert --distill-weight")
    ap.add_argument("--keep-models", action="store_true", help="keep each fold's model in OUT/fold-K-model/")
    ap.add_argument("--rescore", action="store_true",
                    help="llama: decode and score the kept fold models again, untrained "
                         "(OUT/rescored-PRECISION-fold-K.json)")
    ap.add_argument("--precision", default="auto", choices=PRECISIONS,
                    help="llama: what the decoder computes in (as annotate --precision)")
    ap.add_argument("--train-only", action="store_true",
                    help="llama: train and keep each fold's model (OUT/fold-K-model/) without scoring it; "
                         "score it later with --rescore")
    ap.add_argument("--batch-size", type=int, default=None, help="llama: as train llama --batch-size")
    ap.add_argument("--max-minutes", type=float, default=None, help="llama: as train llama --max-minutes")
    ap.add_argument("--lora-r", type=int, default=None, help="llama: as train llama --lora-r (0: every weight)")
    ap.add_argument("--train-precision", default=None, choices=TRAIN_PRECISIONS,
                    help="llama: what training computes in, as train llama --precision")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.rescore and args.extractor != "llama":
        ap.error("--rescore is for --extractor llama (BERT decoding rules: benchmarks/decoding.py)")
    llama_changes = {name: value for name, value in (("batch_size", args.batch_size), ("max_minutes", args.max_minutes),
                                                     ("precision", args.train_precision), ("lora_r", args.lora_r),
                                                     ("lr", args.lr)) if value is not None}
    if args.extractor != "llama" and (args.train_only or set(llama_changes) - {"lr"}):
        ap.error("--train-only, --batch-size, --max-minutes, --lora-r and --train-precision are for --extractor llama")
    ran_in = args.precision  # with --rescore: the precision the decoder resolved "auto" to, as in the file names
    for fold in ([args.fold] if args.fold is not None else range(args.folds)):
        if args.rescore:
            ran_in = run_llama_fold(args.folds, fold, None, args.out, rescore=True,
                                    precision=args.precision)["precision"]
            continue
        if (args.out / f"fold-{fold}.json").exists():
            continue
        if args.extractor == "llama":
            run_llama_fold(args.folds, fold, args.epochs, args.out, args.keep_models or args.train_only,
                           precision=args.precision, recipe_changes=llama_changes, train_only=args.train_only)
        else:
            recipe = {"context_tokens": args.context_tokens, "augment": args.augment, "lr": args.lr or bert.lr,
                      "tune_word_embeddings": args.tune_word_embeddings, "crf": args.crf, "rel_weight": args.rel_weight,
                      "order_seed": args.order_seed, "case_types": args.case_types}
            if args.teacher:
                recipe |= {"teacher": args.teacher.format(fold=fold), "distill_weight": args.distill_weight}
            run_fold(args.folds, fold, args.epochs or bert.epochs, args.out, recipe, args.keep_models, args.base_model)
    pattern = f"rescored-{ran_in}-fold-*.json" if args.rescore else "fold-*.json"
    done = [json.loads(p.read_text()) for p in sorted(args.out.glob(pattern))]
    print(f"{len(done)} of {args.folds} folds done ({pattern})")
    if not done:
        return
    print("| metric | mean | std | per fold |")
    print("|---|---|---|---|")
    for label, key in METRICS:
        values = [d[key] for d in done]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"| {label} | {statistics.mean(values):.3f} | {std:.3f} | {', '.join(f'{v:.3f}' for v in values)} |")


if __name__ == "__main__":
    main()
