"""OpenVINO for the BERT extractor (``--runtime openvino``): the same exported ONNX graphs, fp32.

Why it is here: issue 12 asked for the maintained CPU runtimes side by side, and OpenVINO is
Intel's CPU inference engine. It reads the graphs the ONNX runtime uses (the shipped
``bert-mtsamples/onnx/`` or the export cache), so it needs no export of its own and no torch.
Precision is pinned to fp32 (``INFERENCE_PRECISION_HINT``): on a CPU with AMX or AVX-512 BF16
OpenVINO would otherwise compute in bf16, and a note's annotations would then depend on the
machine. Measured against ONNX Runtime in the README ("Runtimes"); ONNX Runtime stays the
default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kiwi_cas.errors import SetupError
from kiwi_cas.extractors.bert.meta import read_meta
from kiwi_cas.extractors.bert.onnx_runtime import ENCODER, PAIRS, FastTokenizer, graphs, pair_feeds
from kiwi_cas.extractors.bert.runtime import Encoded
from kiwi_cas.extractors.settings import thread_count


class OpenVinoRuntime:
    """Encoder and pair scorer compiled by OpenVINO for the CPU, fp32, one stream (latency)."""

    def __init__(self, model_dir: Path, precision: str = "fp32", threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise SetupError("--runtime openvino needs OpenVINO: pip install 'kiwi_cas[openvino]'",
                             "missing_openvino") from None
        self.meta = read_meta(model_dir)
        folder = graphs(model_dir)
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
                  "INFERENCE_NUM_THREADS": str(thread_count(threads))}
        core = ov.Core()
        self.encoder = core.compile_model(str(folder / ENCODER), "CPU", config)
        self.pairs = core.compile_model(str(folder / PAIRS), "CPU", config)
        self._encoder_request = self.encoder.create_infer_request()
        self._pairs_request = self.pairs.create_infer_request()
        self.tokenizer = FastTokenizer(folder)

    def encode(self, ids: np.ndarray, mask: np.ndarray, case_types: np.ndarray | None = None) -> Encoded:
        feeds = {"ids": ids, "mask": mask} | ({} if case_types is None else {"case_types": case_types})
        out = self._encoder_request.infer(feeds)
        # copies: the request reuses its output buffers on the next call
        hidden, ent, mod = (np.array(out[self.encoder.output(name)])
                            for name in ("hidden", "entity_log_probs", "modifier_log_probs"))
        return Encoded(ent, mod, hidden)

    def score_pairs(self, encoded: Encoded, pairs: np.ndarray) -> np.ndarray:
        out = self._pairs_request.infer(pair_feeds(encoded.state, pairs))
        return np.array(out[self.pairs.output("probs")])
