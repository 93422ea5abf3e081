"""BERT runtimes measured and not kept (CTranslate2, torch bf16): speed, accuracy, memory, batch invariance.

Issue 12 named CTranslate2's encoder support and torch bf16 among the runtimes to compare. This
script runs them behind the same ``BertRuntime`` seam the product's runtimes use, registered in
its own process only, and sets them beside ONNX Runtime:

- ``ctranslate2`` fp32 / int8: the encoder in CTranslate2 (converted here from the model folder;
  needs ``pip install ctranslate2`` beside ``kiwi_cas[train]``), the two tag heads in numpy, the
  pair scorer as the exported ONNX pair graph;
- ``torch-bf16``: the torch runtime under CPU autocast to bfloat16 (fast only where the CPU has
  AMX or AVX-512 BF16).

    python benchmarks/runtimes_not_kept.py --model DEV_MODEL [-n 50]

It prints the ``benchmarks/runtimes.py`` row of each (a fresh process per row), then how many of
40 notes change when annotated in batches of 8 or 32, or in reverse order, instead of alone:
their spans and relations, and their confidences (which kiwi_cas writes into the CAS, so a
change there changes the output file). Why it was not kept: README, "Runtimes".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runtimes  # noqa: E402  (the row measured for every runtime)

from kiwi_cas.extractors.bert import runtime as registry  # noqa: E402
from kiwi_cas.extractors.bert.onnx_runtime import (PAIRS, FastTokenizer, graphs, pair_feeds, session,  # noqa: E402
                                                   weights_key)
from kiwi_cas.extractors.bert.runtime import Encoded  # noqa: E402
from kiwi_cas.extractors.settings import thread_count  # noqa: E402

COMPUTE = {"fp32": "float32", "int8": "int8"}
CONFIGS = [("onnx", "fp32"), ("ctranslate2", "fp32"), ("ctranslate2", "int8"), ("torch-bf16", "bf16")]
CACHE = Path(os.environ.get("CT2_CACHE", Path(tempfile.gettempdir()) / "kiwi-ct2"))


def convert(model_dir: Path, precision: str) -> Path:
    """The encoder as a CTranslate2 model and the tag heads as numpy arrays, once per model and precision."""
    target = CACHE / f"{weights_key(model_dir)}-{precision}"
    if (target / "heads.npz").exists():
        return target
    import ctranslate2

    from kiwi_cas.extractors.bert.artifacts import load_model

    net, tokenizer, _ = load_model(model_dir)
    hf = target / "hf"
    net.encoder.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    ctranslate2.converters.TransformersConverter(str(hf)).convert(str(target / "ct2"), quantization=COMPUTE[precision],
                                                                  force=True)
    np.savez(target / "heads.npz", **{f"{head}_{p}": getattr(getattr(net, head), p).detach().float().numpy()
                                      for head in ("ent_head", "mod_head") for p in ("weight", "bias")})
    return target


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


class Ct2Runtime:
    """Encoder in CTranslate2 (unpadded rows in, padded states out), heads in numpy, pairs in ONNX Runtime."""

    def __init__(self, model_dir: Path, precision: str = "fp32", threads: int | None = None) -> None:
        import ctranslate2

        from kiwi_cas.extractors.bert.meta import read_meta

        self.meta = read_meta(model_dir)
        folder = convert(Path(model_dir), precision)
        self.encoder = ctranslate2.Encoder(str(folder / "ct2"), device="cpu", compute_type=COMPUTE[precision],
                                           intra_threads=thread_count(threads), inter_threads=1)
        with np.load(folder / "heads.npz") as heads:
            self.heads = {k: heads[k] for k in heads.files}
        onnx = graphs(model_dir)
        self.pairs = session(onnx / PAIRS, threads)
        self.tokenizer = FastTokenizer(onnx)

    def encode(self, ids: np.ndarray, mask: np.ndarray, case_types: np.ndarray | None = None) -> Encoded:
        rows = [row[:n].tolist() for row, n in zip(ids, mask.sum(1))]
        hidden = np.array(self.encoder.forward_batch(rows).last_hidden_state, dtype=np.float32)
        hidden = np.pad(hidden, ((0, 0), (0, ids.shape[1] - hidden.shape[1]), (0, 0)))
        h = self.heads
        return Encoded(_log_softmax(hidden @ h["ent_head_weight"].T + h["ent_head_bias"]),
                       _log_softmax(hidden @ h["mod_head_weight"].T + h["mod_head_bias"]), hidden)

    def score_pairs(self, encoded: Encoded, pairs: np.ndarray) -> np.ndarray:
        return self.pairs.run(None, pair_feeds(encoded.state, pairs))[0]


def torch_bf16(model_dir: Path, precision: str = "bf16", threads: int | None = None):
    """The torch runtime with the network under CPU autocast to bfloat16, outputs back in float32 (torch is
    imported here, not at the top, so the other rows' memory figures do not carry it)."""
    import torch

    from kiwi_cas.extractors.bert.torch_runtime import TorchRuntime

    class TorchBf16Runtime(TorchRuntime):
        def encode(self, ids: np.ndarray, mask: np.ndarray, case_types: np.ndarray | None = None) -> Encoded:
            self.net.eval()
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                hidden, ent, mod = self.net(torch.from_numpy(ids), torch.from_numpy(mask),
                                            None if case_types is None else torch.from_numpy(case_types))
            return Encoded(torch.log_softmax(ent.float(), -1).numpy(), torch.log_softmax(mod.float(), -1).numpy(),
                           hidden)

        def score_pairs(self, encoded: Encoded, pairs: np.ndarray) -> np.ndarray:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return torch.sigmoid(self.net.score_pairs(encoded.state, torch.from_numpy(pairs)).float()).numpy()

    return TorchBf16Runtime(model_dir, "fp32", threads=threads)


def register() -> None:
    """Make ``ctranslate2`` and ``torch-bf16`` runtime names in this process only."""
    registry.RUNTIMES["ctranslate2"] = f"{Path(__file__).stem}:Ct2Runtime"
    registry.PRECISIONS["ctranslate2"] = tuple(COMPUTE)
    registry.RUNTIMES["torch-bf16"] = f"{Path(__file__).stem}:torch_bf16"
    registry.PRECISIONS["torch-bf16"] = ("bf16",)


def invariance(runtime: str, precision: str, model: str) -> str:
    """Notes (of 40) whose annotations, or only their confidences, differ from the note annotated alone."""
    from kiwi_cas.core.notes import NoteInput, extract_notes
    from kiwi_cas.extractors.config import BertConfig
    from kiwi_cas.extractors.registry import load_extractor
    from kiwi_cas.formats.documents import load_documents

    extractor = load_extractor(BertConfig(model=Path(model), runtime=runtime, precision=precision))
    texts = [d.text for d in load_documents(runtimes.TRAIN)[:40]]

    def annotate(size: int, order: list[int]) -> dict[int, tuple[list, list]]:
        out = {}
        for i in range(0, len(order), size):
            chunk = order[i:i + size]
            for k, r in zip(chunk, extract_notes(extractor, [NoteInput(texts[j]) for j in chunk])):
                spans = sorted(s.key() for s in r.entities + r.modifiers)
                links = sorted((x.entity.key(), x.modifier.key()) for x in r.relations)
                confidences = sorted([s.confidence for s in r.entities + r.modifiers] + [x.confidence for x in r.relations])
                out[k] = ((spans, links), confidences)
        return out

    forward = list(range(len(texts)))
    alone = annotate(1, forward)
    cells = []
    for size, order, name in ((8, forward, "batch 8"), (32, forward, "batch 32"), (8, forward[::-1], "reversed")):
        got = annotate(size, order)
        cells.append(f"{name}: {sum(got[k][0] != alone[k][0] for k in alone)} / "
                     f"{sum(got[k][1] != alone[k][1] for k in alone)}")
    return "; ".join(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--one", nargs=2, metavar=("RUNTIME", "PRECISION"))
    args = ap.parse_args()
    register()
    if args.one:
        row = runtimes.one(*args.one, args.model, args.n)
        row["invariance"] = invariance(*args.one, args.model)
        print(json.dumps(row))
        return
    print(f"machine: {runtimes.cpu_features()}, {os.cpu_count()} cores; {args.n} notes for speed, 16 dev notes for "
          "accuracy, 40 notes for invariance")
    print("| runtime | precision | load s | s/note steady | s/note incl. load | max RSS MB | NER exact F1 | RE e2e exact F1 "
          "| notes changed vs alone: annotations / confidences |")
    print("|---|---|---|---|---|---|---|---|---|")
    for runtime, precision in CONFIGS:
        cmd = [sys.executable, __file__, "--one", runtime, precision, "-n", str(args.n), "--model", args.model]
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        print(f"| {runtime} | {precision} | {r['load_s']} | {r['steady_s_per_note']} | {r['s_per_note_with_load']} "
              f"| {r['max_rss_mb']} | {r['ner_f1']:.3f} | {r['re_f1']:.3f} | {r['invariance']} |")


if __name__ == "__main__":
    main()
