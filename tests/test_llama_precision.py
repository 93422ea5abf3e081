"""What the LLaMA path computes in: ``auto`` is the same on every CPU (float32), and bfloat16
products, where asked for, stay close to float32's inside an otherwise float32 model."""

from __future__ import annotations

import pytest

from kiwi_cas.errors import UsageError
from kiwi_cas.extractors.config import LlamaConfig
from kiwi_cas.extractors.llama.precision import resolve_precision


def test_auto_is_bf16_on_cuda_and_fp32_on_any_cpu_and_explicit_choices_stand():
    assert resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("fp32", "cuda") == "fp32"


def test_an_unknown_precision_is_a_usage_error():
    with pytest.raises(UsageError, match="auto, fp32, bf16"):
        LlamaConfig(precision="int8")


def test_bf16_products_keep_a_float32_model_close_to_float32():
    import torch
    from transformers import LlamaConfig as HFLlamaConfig, LlamaForCausalLM

    from kiwi_cas.extractors.llama.bf16 import Bf16Linear, with_bf16_products

    torch.manual_seed(0)
    config = HFLlamaConfig(vocab_size=500, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 500, (3, 17))
    with torch.inference_mode():
        want = model(ids).logits
        mixed = with_bf16_products(model)
        got = mixed(ids).logits
    head = mixed.get_output_embeddings()
    assert [m for m in mixed.modules() if type(m) is torch.nn.Linear] == [head]  # the head stays float32
    assert head.weight.dtype == torch.float32 and head.weight is mixed.get_input_embeddings().weight  # still tied
    assert sum(isinstance(m, Bf16Linear) for m in mixed.modules()) == 2 * 7  # q k v o gate up down per layer
    assert mixed.model.norm.weight.dtype == torch.float32
    assert got.dtype == torch.float32
    assert (got - want).abs().max() < 0.05 * want.abs().max()
    assert not torch.equal(got, want)  # the products did run in bfloat16


@pytest.mark.parametrize("slow", [True, False])
def test_bf16_on_a_cpu_that_emulates_it_says_so_in_one_line(slow, tmp_path, monkeypatch, caplog):
    """Without AVX-512 or AMX, torch converts bfloat16 in software: ``--precision bf16`` then runs several
    times slower than fp32. The backend says so once, at load, and still runs; fp32 says nothing."""
    from kiwi_cas.extractors.llama import bf16
    from kiwi_cas.extractors.llama.backends import ModelSource
    from kiwi_cas.extractors.llama.backends.transformers import TransformersBackend
    from tests.helpers import tiny_llama

    assert isinstance(bf16.slow_on_this_cpu(), bool)  # the real check answers on this machine
    monkeypatch.setattr(bf16, "slow_on_this_cpu", lambda: slow)
    source = ModelSource(tiny_llama(tmp_path / "tiny"))
    with caplog.at_level("WARNING", logger="kiwi_cas.llama"):
        assert TransformersBackend(source, precision="bf16", device="cpu").precision == "bf16"
        assert TransformersBackend(source, precision="fp32", device="cpu").precision == "fp32"
    assert [r.getMessage() for r in caplog.records] == ([bf16.SLOW_CPU_NOTE] if slow else [])
