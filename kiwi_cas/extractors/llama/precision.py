"""What the LLaMA path computes in: float32, or bfloat16 matrix products.

``auto`` is bfloat16 on CUDA and float32 on CPU. On CPU, ``bf16`` is an opt-in: a CPU with AMX
(Intel Xeon since Sapphire Rapids) multiplies bfloat16 matrices ~4× faster than float32 ones
(a 2-core slice, the decoder's products with 160 rows), which made the LLaMA path 1.1-1.3×
faster end to end; a CPU without it converts bfloat16 in software, slower than float32. It is
not picked by CPU flags: a corpus annotated on a mix of machines would then get different
answers for the same note, and bfloat16 moved the dev and CV-fold 3-4 figures by up to 0.006
(README, LLaMA). How bfloat16 is applied on CPU is in ``bf16``.

Torch-free, so that configs and the command line can name and check precisions cheaply.
"""

from __future__ import annotations

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` -> ``bf16`` on CUDA, ``fp32`` on CPU; other values as given."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cuda" else "fp32"
