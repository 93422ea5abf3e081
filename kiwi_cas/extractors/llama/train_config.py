"""The LLaMA training recipe as plain data, apart from the trainer so that the CLI can take its option
defaults from here without importing torch: one place sets each default."""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("joint", "kiwi")  # joint: one pass per sentence; kiwi: Kiwi's two steps (NER, then RE per entity)
# what a training step computes in: auto = bf16 autocast on a CUDA GPU, fp32 on the CPU; bf16 = bf16 autocast
# there too (~1.4x faster per step on a CPU with AMX, other float rounding); fp32 = no autocast anywhere
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class LlamaTrainConfig:
    # the defaults are the shipped adapter's recipe (README, LLaMA training)
    max_examples: int = 5000  # training pairs sampled (seeded) from the corpus
    re_share: float = 0.5
    epochs: int = 2
    lr: float = 6e-4
    lora_r: int = 16
    lora_alpha: int = 64
    lora_dropout: float = 0.05
    batch_size: int = 8
    max_tokens: int = 320
    max_minutes: float = 0.0  # 0: no limit
    seed: int = 13
    name: str = "kiwi-smollm2-135m-mtsamples"
    format: str = "joint"  # "joint": one pair per sentence; "kiwi": NER + RE pairs (Kiwi's two steps)
    precision: str = "auto"  # one of TRAIN_PRECISIONS
