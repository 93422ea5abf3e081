"""Attention for the drafting decoder: PyTorch's SDPA over the key/value heads as they are.

SmolLM2 and LLaMA-3 share each key/value head among several query heads (grouped-query
attention). With a mask, transformers' ``sdpa`` attention copies every cached key and value
once per query head (``repeat_kv``) in every layer at every step on CPU; the decoder always
passes a mask (padding, rejected guesses), so those copies grew with the cache and cost ~13% of
a CPU run. ``enable_gqa`` lets SDPA read the shared heads in place: the same products, no copies.
The mask is materialised (never SDPA's ``is_causal``, whose upper-left alignment is wrong for
queries that follow a cache), so one code path serves prompts, steps and the shared prefix.
"""

from __future__ import annotations

import functools

import torch

NAME = "kiwi_gqa_sdpa"


def gqa_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
             attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
             **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention-function contract: (batch, heads, q, dim) in, (batch, q, heads, dim) out."""
    if attention_mask is None:  # transformers left it out: plain causal attention, the queries last
        q, kv = query.shape[2], key.shape[2]
        attention_mask = torch.ones(q, kv, dtype=torch.bool, device=query.device).tril(kv - q)
    groups = getattr(module, "num_key_value_groups", 1)
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                           dropout_p=dropout, scale=scaling, enable_gqa=groups > 1)
    return out.transpose(1, 2).contiguous(), None


def use_gqa_sdpa(model: torch.nn.Module) -> bool:
    """Switch ``model`` to :func:`gqa_sdpa` where this transformers can register attention functions
    (4.48 and later); elsewhere it keeps its own attention and says so by returning False."""
    try:
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.masking_utils import sdpa_mask
    except ImportError:
        return False
    AttentionInterface.register(NAME, gqa_sdpa)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return True
