"""The PyTorch runtime for the BERT extractor: fp32 as trained, or int8 dynamic quantization."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from kiwi_cas.extractors.bert.artifacts import load_model
from kiwi_cas.extractors.bert.model import KiwiBertNet
from kiwi_cas.extractors.bert.runtime import Encoded


class TorchRuntime:
    """``precision="int8"``: dynamic int8 quantization (per-channel) of the encoder's linear layers, about
    twice as fast on CPU at a small accuracy cost (both measured in the README); ``fp32``: as trained."""

    def __init__(self, model_dir: Path | None = None, precision: str = "fp32", *, threads: int | None = None,
                 net: KiwiBertNet | None = None, tokenizer=None, meta=None) -> None:
        if net is None:
            from kiwi_cas.extractors.settings import configure_threads

            configure_threads(threads)
            net, tokenizer, meta = load_model(Path(model_dir))
            if precision == "int8":
                from torch.ao.quantization import per_channel_dynamic_qconfig

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch.ao deprecation notes; a maintained runtime is issue #12
                    net.encoder = torch.ao.quantization.quantize_dynamic(
                        net.encoder, {torch.nn.Linear: per_channel_dynamic_qconfig})
        self.net, self.tokenizer, self.meta = net, tokenizer, meta

    def encode(self, ids: np.ndarray, mask: np.ndarray, case_types: np.ndarray | None = None) -> Encoded:
        was_training = self.net.training
        self.net.eval()
        with torch.inference_mode():
            hidden, ent_logits, mod_logits = self.net(torch.from_numpy(ids), torch.from_numpy(mask),
                                                      None if case_types is None else torch.from_numpy(case_types))
        self.net.train(was_training)
        return Encoded(torch.log_softmax(ent_logits, -1).numpy(), torch.log_softmax(mod_logits, -1).numpy(), hidden)

    def score_pairs(self, encoded: Encoded, pairs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.sigmoid(self.net.score_pairs(encoded.state, torch.from_numpy(pairs))).numpy()
