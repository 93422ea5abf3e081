"""bfloat16 matrix products inside a float32 model (the transformers backend's ``bf16`` on CPU).

Only the decoder's products take bfloat16 inputs (:class:`Bf16Linear`: weights stored in bfloat16,
products accumulated in float32 and returned as float32); the residual stream, the norms, rotary
embeddings, attention and the output head stay float32. Casting the whole model to bfloat16 was
faster still but lost 0.008 RE end to end on the dev notes; with float32 around the products the
dev and CV-fold 3-4 figures are float32's to ±0.006 (README, LLaMA).
"""

from __future__ import annotations

import torch

SLOW_CPU_NOTE = ("note: this CPU has no native bfloat16 arithmetic (it needs AVX-512 or AMX), so bf16 is "
                 "converted in software and runs several times slower than fp32 here; --precision fp32 avoids it")


def slow_on_this_cpu() -> bool:
    """Whether this CPU lacks the bfloat16 products oneDNN runs natively (AVX-512 or AMX).

    There torch emulates them, and bf16 stops being an opt-in speed-up: on a 2-core AVX2-only AMD
    EPYC a LLaMA training step under bf16 autocast took 112 s against 6.2 s in fp32 (the first ten
    steps of a CV fold each way), and a decoder product of 160 rows ~7× as long. Said, not refused:
    the answers are still right, and a user may have a reason.
    """
    return not torch.ops.mkldnn._is_mkldnn_bf16_supported()


class Bf16Linear(torch.nn.Module):
    """A bias-free linear layer with bfloat16 weights that takes and returns the caller's dtype."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        if linear.bias is not None:
            raise ValueError("Bf16Linear replaces bias-free projections only (the LLaMA family's)")
        self.weight = torch.nn.Parameter(linear.weight.detach().to(torch.bfloat16), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x.to(torch.bfloat16), self.weight).to(x.dtype)


def with_bf16_products(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (float32) with every bias-free linear layer of its decoder as a :class:`Bf16Linear`.

    The output head stays float32: its argmax is every decision. With the head in bfloat16 too
    (~4% faster) modifiers gained ~0.01 but RE end to end lost 0.001-0.009 on the dev notes and CV
    folds 3-4; with it float32 the figures stay within the spread of float32's.
    """
    head = model.get_output_embeddings()
    targets = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if type(child) is torch.nn.Linear and child.bias is None and child is not head]
    for parent, name, child in targets:
        setattr(parent, name, Bf16Linear(child))
    return model
