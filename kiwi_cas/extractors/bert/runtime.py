"""The seam between BERT decoding (numpy, this package) and whatever runs the network.

The extractor tokenizes, batches and decodes; a runtime only turns padded token ids into
tag log-probabilities and scores relation candidates. Both sides speak numpy, so a second
runtime (ONNX Runtime, OpenVINO, ...) is a new module registered in :data:`RUNTIMES`, not an
edit of the extractor.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass
class Encoded:
    """One encoder pass over a padded batch."""

    entity_log_probs: np.ndarray  # [batch, tokens, entity tags]
    modifier_log_probs: np.ndarray  # [batch, tokens, modifier tags]
    state: Any  # the runtime's own hidden states, handed back to score_pairs


class BertRuntime(Protocol):
    """Runs a kiwi_cas BERT model folder; ``meta`` and ``tokenizer`` come with it."""

    meta: Any
    tokenizer: Any

    def encode(self, ids: np.ndarray, mask: np.ndarray, case_types: np.ndarray | None = None) -> Encoded:
        """``case_types`` (same shape as ``ids``) is given exactly when ``meta.case_types`` is set."""
        ...

    def score_pairs(self, encoded: Encoded, pairs: np.ndarray) -> np.ndarray:
        """Relation probabilities for int64 ``pairs`` [P, 8] (see ``KiwiBertNet.score_pairs``)."""
        ...


#: runtime name -> "module:factory"; the factory takes (model folder, precision)
RUNTIMES: dict[str, str] = {
    "onnx": "kiwi_cas.extractors.bert.onnx_runtime:OnnxRuntime",
    "torch": "kiwi_cas.extractors.bert.torch_runtime:TorchRuntime",
    "openvino": "kiwi_cas.extractors.bert.openvino_runtime:OpenVinoRuntime",
}

#: precisions each runtime offers; the first is its default
PRECISIONS: dict[str, tuple[str, ...]] = {
    "onnx": ("fp32",),
    "torch": ("fp32", "int8"),
    "openvino": ("fp32",),
}


def load_runtime(name: str, model_dir: Path, precision: str, threads: int | None = None) -> BertRuntime:
    module, factory = RUNTIMES[name].split(":")
    return getattr(importlib.import_module(module), factory)(model_dir, precision, threads=threads)
