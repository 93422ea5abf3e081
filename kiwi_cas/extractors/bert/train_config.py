"""The BERT training recipe as plain data, apart from the trainer so that the CLI can take its option
defaults from here without importing torch: one place sets each default."""

from __future__ import annotations

from dataclasses import dataclass

# the heads start from random weights, the encoder from pretrained ones: a command that sets the encoder's
# learning rate gives the heads this many times it
HEAD_LR_FACTOR = 10
ENCODER_LR = 1e-4


@dataclass
class TrainConfig:
    epochs: int = 12
    lr: float = ENCODER_LR
    head_lr: float = ENCODER_LR * HEAD_LR_FACTOR
    batch_size: int = 16
    max_tokens: int = 256
    context_tokens: int = 0
    warmup: float = 0.1
    seed: int = 13
    # seeds batch order and dropout apart from the initial weights (None: ``seed``), so that runs differ
    # only in what they saw: such runs can be averaged weight by weight (README, levers)
    order_seed: int | None = None
    rel_weight: float = 1.0
    augment: float = 0.0  # share of free-standing entity mentions replaced, drawn anew each epoch (augment.py)
    # fine-tune the packaged base's word embeddings too (then they are stored in the folder, +23 MB);
    # by default they stay frozen and are read from the base wheel
    tune_word_embeddings: bool = False
    crf: bool = True  # train each tag layer as a linear-chain CRF (crf.py) instead of per-token cross-entropy
    # a trained model folder whose tag scores and relation probabilities the student also learns (distill.py)
    teacher: str | None = None
    distill_weight: float = 1.0
    case_types: bool = False  # feed each token's letter-case class as its token type (segments.CASE_TYPES)
    name: str = "kiwi-minilm-mtsamples"
