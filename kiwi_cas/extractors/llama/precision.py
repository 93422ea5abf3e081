"""What the LLaMA path computes in: float32, or bfloat16 matrix products where the hardware has them.

A CPU with AMX (Intel Xeon since Sapphire Rapids) multiplies bfloat16 matrices several times
faster than float32 ones (on a 2-core slice: ~4× for the decoder's products with 160 rows, and
half the weight bytes to read for the few-row products at the end of a batch). On a CPU without
it, bfloat16 is converted in software and slower than float32. So ``auto`` picks bfloat16 only
where it pays: CUDA, or a CPU with AMX-BF16. How bfloat16 is applied on CPU is in ``bf16``.

Torch-free, so that configs and the command line can name and check precisions cheaply.
"""

from __future__ import annotations

from pathlib import Path

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


def cpu_has_amx_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU advertises AMX bfloat16 tiles (read on Linux; elsewhere: no)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and "amx_bf16" in line.split() for line in text.splitlines())


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` -> ``bf16`` on CUDA or a CPU with AMX-BF16, else ``fp32``; other values as given."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cuda" or cpu_has_amx_bf16() else "fp32"
