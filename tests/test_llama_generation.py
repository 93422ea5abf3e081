"""Real generation with the shipped LLaMA model (SmolLM2-135M + LoRA) on CPU, kept short."""

from __future__ import annotations

import pytest

from kiwi_cas.extractors.llama.backends import cuda_and_vllm
from kiwi_cas.extractors.config import LlamaConfig
from kiwi_cas.extractors.llama.extractor import LlamaExtractor, default_model_path
from tests.conftest import XMI
from tests.helpers import kiwi_only, noise_of_annotate, run, tiny_llama, type_counts, without_kiwi

SENTENCES = ["Patient denies chest pain.", "Metoprolol 25 mg p.o. b.i.d."]


def _shipped(precision: str) -> LlamaExtractor:
    if not default_model_path().exists():
        pytest.fail("the shipped LLaMA model folder is missing")
    return LlamaExtractor.from_config(LlamaConfig(backend="transformers", constrained=True, batch_size=8,
                                                  precision=precision))


@pytest.fixture(scope="module")
def llama():
    return _shipped("fp32")


@pytest.fixture(scope="module")
def llama_bf16():
    """bfloat16 products inside the float32 model (``--precision bf16``): fast on a CPU with AMX, emulated elsewhere."""
    return _shipped("bf16")


def test_constrained_generation_never_leaves_the_input(llama):
    from kiwi_cas.extractors.llama.align import parse_tags
    from kiwi_cas.extractors.llama.backends import GenRequest
    from kiwi_cas.core import schema

    reqs = [GenRequest(llama.prompts.ner_prompt(s), " " + s, schema.ENTITY_LABELS) for s in SENTENCES]
    outs = llama.backend.generate(reqs, constrained=True)
    for s, out in zip(SENTENCES, outs):
        plain, _, problems = parse_tags(out)
        assert plain.strip() == s  # the text, tags aside, is exactly the input
        assert not problems


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_drafted_decoding_equals_plain_constrained_greedy(precision, request, monkeypatch):
    """The fast decoder (source drafts, shared prefix, argmax-first constraint check, two rows at a time
    with the others joining as rows finish, or all at once with finished rows left idle in the batch)
    writes what one-token-at-a-time greedy decoding over the fully masked vocabulary writes, in either
    precision."""
    import torch

    llama = request.getfixturevalue("llama" if precision == "fp32" else "llama_bf16")
    assert llama.backend.precision == precision

    from kiwi_cas.core import schema
    from kiwi_cas.extractors.llama.backends import GenRequest, max_new_tokens
    from kiwi_cas.extractors.llama.constrained import TagFollower, TagGrammar, allowed_tokens, finished
    from kiwi_cas.extractors.llama import drafting
    from kiwi_cas.extractors.llama.drafting import cache_keyword

    backend = llama.backend
    from kiwi_cas.extractors.llama.prompts import mark

    reqs = [GenRequest(llama.prompts.ner_prompt(s), " " + s, schema.ENTITY_LABELS) for s in SENTENCES]
    marked = mark(SENTENCES[0], [(15, 25, "problem")])  # and an RE prompt: "chest pain" pre-marked
    reqs.append(GenRequest(llama.prompts.re_prompt_marked(marked, "problem"), " " + marked,
                           schema.ALLOWED_PAIRS["problem"]))
    # and the joint format: free, and with "chest pain" given (attributes, forced tags)
    from kiwi_cas.extractors.llama.train import JOINT_TEMPLATE

    joint = JOINT_TEMPLATE.replace("{}", SENTENCES[0], 1)
    reqs.append(GenRequest(joint, " " + SENTENCES[0], schema.ENTITY_LABELS, schema.ALLOWED_PAIRS))
    reqs.append(GenRequest(joint, " " + SENTENCES[0], schema.ENTITY_LABELS, schema.ALLOWED_PAIRS,
                           ((16, 26, "problem"),)))
    for sentence in (SENTENCES[1], "No fever."):  # rows of one instruction that finish at different steps
        reqs.append(GenRequest(JOINT_TEMPLATE.replace("{}", sentence, 1), " " + sentence, schema.ENTITY_LABELS,
                               schema.ALLOWED_PAIRS))
    # two rows at a time, the others joining the running batch as rows finish; then all rows in one
    # batch, each finished row left in it, idle, until the last one is done
    runs, size = [], backend.batch_size
    try:
        backend.batch_size = 2
        runs.append(backend.generate(reqs, constrained=True))
        backend.batch_size = 8
        monkeypatch.setattr(drafting, "DONE_SHARE", 1.0)
        runs.append(backend.generate(reqs, constrained=True))
    finally:
        backend.batch_size = size
    tok, model = backend.tokenizer, backend.model
    for req, got in zip(reqs, zip(*runs)):
        ids = tok(req.prompt, add_special_tokens=False)["input_ids"]
        follower = TagFollower(backend.trie, req.source, TagGrammar(req.labels, req.attributes, req.forced),
                               tok.eos_token_id, True)
        out: list[int] = []
        keyword = cache_keyword(model)
        with torch.inference_mode():
            step = model(torch.tensor([ids]), use_cache=True)
            for _ in range(max_new_tokens(tok, req)):
                logits = step.logits[0, -1]
                allowed = allowed_tokens(backend.trie, follower.states, req.source, follower.grammar)
                if finished(follower.states, req.source) or not allowed:
                    allowed.append(tok.eos_token_id)
                masked = torch.full_like(logits, float("-inf"))
                masked[allowed] = logits[allowed]
                choice = int(masked.argmax())
                if choice == tok.eos_token_id:
                    break
                out.append(choice)
                follower.push(choice)
                cache = step.cache if hasattr(step, "cache") else step.past_key_values
                step = model(torch.tensor([[choice]]), use_cache=True, **{keyword: cache})
        assert got == (tok.decode(out, skip_special_tokens=True),) * len(runs)
    assert backend.stats.forward_passes > 0


def test_the_pruned_trie_walk_finds_exactly_the_allowed_tokens(llama):
    """The output head scores only what ``allowed_by_walk`` lists; it must list every token the
    automaton allows (what the full walk over the vocabulary finds), at every token boundary of
    admitted outputs in all three settings of the tag language and of a joint answer with
    attributes, and give up (None) only inside an attribute value."""
    from kiwi_cas.core import schema
    from kiwi_cas.extractors.llama.constrained import TagGrammar, advance, allowed_by_walk, allowed_tokens, start_states
    from tests.tag_language import SETTINGS, SOURCE

    trie, tok = llama.backend.trie, llama.backend.tokenizer
    source = " Patient denies chest pain, takes Metoprolol 25 mg p.o. b.i.d."
    cases = [(SOURCE, TagGrammar(labels, attributes, forced), text)
             for _, labels, attributes, forced, outputs in SETTINGS for text, ok in outputs if ok]
    cases.append((source, TagGrammar(schema.ENTITY_LABELS, schema.ALLOWED_PAIRS), ' Patient denies <span class='
                  '"problem" negation="denies" bodyloc="chest">chest pain</span>, takes <span class="drug" dosage='
                  '"25 mg" route="p.o." frequency="b.i.d.">Metoprolol</span> 25 mg p.o. b.i.d.'))
    values = 0
    for src, grammar, text in cases:
        states = start_states(src)
        for token in tok(text, add_special_tokens=False)["input_ids"]:
            pruned, full = allowed_by_walk(trie, states, src, grammar), allowed_tokens(trie, states, src, grammar)
            if pruned is None:
                values += 1
                assert len(full) > 10_000  # inside a value: nearly every token
            else:
                assert sorted(pruned) == sorted(full), tok.decode(token)
            states = advance(states, trie.strings[token], src, grammar)
            assert states
    assert values > 0


def test_pick_is_the_argmax_over_the_allowed_tokens_however_many_better_ones_are_barred(llama):
    """Where the argmax is not allowed, ``pick`` tries the next best tokens, then walks the whole
    vocabulary: either way greedy's choice among the allowed tokens."""
    import random

    import torch

    from kiwi_cas.core import schema
    from kiwi_cas.extractors.llama.constrained import RUNNERS_UP, TagFollower, TagGrammar, allowed_tokens

    backend = llama.backend
    source = " No fever."
    follower = TagFollower(backend.trie, source, TagGrammar(schema.ENTITY_LABELS, schema.ALLOWED_PAIRS),
                           backend.tokenizer.eos_token_id, True)
    allowed = allowed_tokens(backend.trie, follower.states, source, follower.grammar)
    vocabulary = backend.model.get_output_embeddings().weight.shape[0]
    barred = sorted(set(range(vocabulary)) - set(allowed))
    rng, gen = random.Random(0), torch.Generator().manual_seed(0)
    for above in (0, 1, RUNNERS_UP // 2, RUNNERS_UP, RUNNERS_UP + 1, 1000):  # barred tokens above the best allowed
        logits = torch.randn(vocabulary, generator=gen)
        logits[rng.sample(barred, above)] = 10 + torch.rand(above, generator=gen)
        masked = torch.full_like(logits, float("-inf"))
        masked[allowed] = logits[allowed]
        assert follower.pick(logits) == int(masked.argmax())


def test_finds_the_obvious(llama):
    [a, b] = llama.extract(SENTENCES)
    assert ("chest pain", "problem") in {(SENTENCES[0][s.start:s.end], s.label) for s in a.entities}
    assert any(SENTENCES[1][s.start:s.end] == "Metoprolol" and s.label == "drug" for s in b.entities)
    for ext in (a, b):
        for r in ext.relations:
            assert r.modifier in ext.modifiers and r.entity in ext.entities


def test_annotate_xmi_with_llama_end_to_end(tmp_path, uima_java):
    from kiwi_cas.annotate.annotator import AnnotatorConfig

    src = tmp_path / "in" / "n.txt"
    src.parent.mkdir()
    src.write_text("CHIEF COMPLAINT: Chest pain.\nShe denies fever.")
    summary = run([src], tmp_path / "xmi1", config=AnnotatorConfig(extractor=LlamaConfig(backend="transformers")))
    assert summary.ok == 1
    # and on real XMI from another tool, keeping what came in
    real = XMI / "inception" / "relation_test.xmi"
    summary = run([real], tmp_path / "xmi2", config=AnnotatorConfig(extractor=LlamaConfig(backend="transformers")),
                  typesystems=(XMI / "inception" / "TypeSystem.xml",))
    assert summary.ok == 1
    before = type_counts(real, [XMI / "inception" / "TypeSystem.xml"])
    after = type_counts(tmp_path / "xmi2" / real.name, [tmp_path / "xmi2" / "TypeSystem.xml"])
    assert without_kiwi(after) == before
    assert kiwi_only(type_counts(tmp_path / "xmi1" / "n.xmi", [tmp_path / "xmi1" / "TypeSystem.xml"]))
    [java] = uima_java.check(tmp_path / "xmi1" / "TypeSystem.xml", [tmp_path / "xmi1" / "n.xmi"])
    assert java["ok"], java["error"]


def test_a_llama_run_prints_no_warnings(tmp_path):
    """transformers 5 warns on every call that passes the KV cache under its old name."""
    note = tmp_path / "n.txt"
    note.write_text("CHIEF COMPLAINT: Chest pain.\nShe denies fever.")
    assert noise_of_annotate(note, "-o", tmp_path / "out", "--extractor", "llama", "--backend", "transformers") == []


@pytest.mark.skipif(not cuda_and_vllm(), reason="vLLM in this venv on a CUDA GPU (pip install 'kiwi_cas[vllm]'); "
                    "on CPU, tests/test_vllm_cpu.py runs vLLM from .venv-vllm")
def test_vllm_backend_matches_constraints():
    ex = LlamaExtractor.from_config(LlamaConfig(backend="vllm", constrained=True))
    [a] = ex.extract(["Patient denies chest pain."])
    for s in a.entities:
        assert 0 <= s.start < s.end <= len("Patient denies chest pain.")


def test_a_folder_without_kiwi_metadata_runs_with_kiwis_exact_prompts(tmp_path):
    """The official Kiwi LLaMA-3 weights come as a plain causal-LM folder: no kiwi_model.json, no
    templates. Such a folder is run with Kiwi's own prompts; here a tiny randomly initialised Llama
    (with the shipped base's tokenizer) stands in for the 8B weights."""
    from kiwi_cas.extractors.llama.prompts import PromptSet

    folder = tiny_llama(tmp_path / "kiwi-llama-like")
    assert not (folder / "kiwi_model.json").exists()

    ex = LlamaExtractor.from_config(LlamaConfig(model=folder, backend="transformers"))
    kiwi = PromptSet.load()
    assert ex.prompts == kiwi and ex.meta["version"] == "external"
    seen = []
    generate = ex.backend.generate
    ex.backend.generate = lambda reqs, constrained: seen.extend(r.prompt for r in reqs) or generate(reqs, constrained)
    sentence = "Patient denies chest pain."
    [result] = ex.extract([sentence])
    assert seen[0] == kiwi.ner.replace("{}", sentence, 1)  # Kiwi's NER prompt, word for word
    for span in result.entities + result.modifiers:  # whatever a random model tags stays inside the text
        assert 0 <= span.start < span.end <= len(sentence)
    # and its RE prompts are Kiwi's too: one per given entity, from Kiwi's template for its type
    from kiwi_cas.core.spans import Span

    seen.clear()
    ex.extract([sentence], entities=[[Span(15, 25, "problem")]])
    assert seen == [kiwi.re_prompt(sentence, 15, 25, "problem")]


def test_a_joint_format_folder_costs_one_prompt_per_sentence(tmp_path):
    """Templates with a ``joint`` entry switch the extractor to the one-pass format: one prompt per
    sentence, constrained to the sentence with entity tags whose attributes name their modifiers.
    With entities given, every relation ends on a given entity."""
    import json

    from kiwi_cas.core.spans import Span
    from kiwi_cas.core import schema
    from kiwi_cas.extractors.llama.constrained import TagGrammar, advance, start_states
    from kiwi_cas.extractors.llama.train import JOINT_TEMPLATE, SHORT_TEMPLATES

    folder = tiny_llama(tmp_path / "joint")
    (folder / "kiwi_prompts.json").write_text(json.dumps(dict(SHORT_TEMPLATES, joint=JOINT_TEMPLATE)))
    ex = LlamaExtractor.from_config(LlamaConfig(model=folder, backend="transformers"))
    seen, outputs = [], []

    def spy(reqs, constrained):
        seen.extend(reqs)
        outputs.extend(generate(reqs, constrained))
        return outputs[-len(reqs):]

    generate, ex.backend.generate = ex.backend.generate, spy
    sentences = ["Patient denies chest pain.", "Aspirin 81 mg daily."]
    results = ex.extract(sentences)
    assert [r.prompt for r in seen] == [JOINT_TEMPLATE.replace("{}", s, 1) for s in sentences]
    for sentence, out, res in zip(sentences, outputs, results):
        # a random model, held by the constraint to a prefix of the sentence with well-formed joint tags
        # (it may run out of tokens writing attributes)
        assert advance(start_states(" " + sentence), out, " " + sentence,
                       TagGrammar(schema.ENTITY_LABELS, schema.ALLOWED_PAIRS))
        for span in res.entities + res.modifiers:
            assert 0 <= span.start < span.end <= len(sentence)
    seen.clear()
    outputs.clear()
    given = [Span(15, 25, "problem")]
    res, none = ex.extract(sentences, entities=[given, []])
    assert len(seen) == 1  # a sentence without given entities is not prompted
    assert '<span class="problem"' in outputs[0] and outputs[0].count("<span") == 1  # exactly the given one
    assert res.entities == given and all(r.entity == given[0] for r in res.relations)
    assert none.entities == [] and none.relations == []


def test_a_retrained_adapter_s_merge_replaces_its_earlier_merge(tmp_path, monkeypatch):
    """vLLM reads a merged full model (about 0.5 GB); retraining an adapter in place must not leave one per run."""
    import json
    import shutil

    from kiwi_cas.extractors.llama.backends import vllm
    from kiwi_cas.extractors.llama.base_model import prepare_base
    from kiwi_cas.extractors.settings import CACHE_SOURCE

    base = prepare_base()
    monkeypatch.setattr(vllm, "models_home", lambda: tmp_path / "home")
    (tmp_path / "home").mkdir()
    adapter = shutil.copytree(default_model_path(), tmp_path / "adapter")
    other = tmp_path / "home" / "merged-adapter-000000000000"  # the same folder name, another adapter's merge
    other.mkdir()
    (other / CACHE_SOURCE).write_text(json.dumps({"source": str(tmp_path / "elsewhere" / "adapter")}))

    first = vllm.merged_folder(base, adapter)
    assert vllm.merged_folder(base, adapter) == first  # cached: the same content merges once
    with open(adapter / "adapter_config.json", "a") as f:
        f.write("\n")  # new content in the same folder, as a retrain leaves it
    second = vllm.merged_folder(base, adapter)
    assert second != first and (second / "config.json").exists() and not first.exists()
    assert other.exists()
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == sorted([other.name, second.name])
