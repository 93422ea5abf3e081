"""BERT runtimes side by side on this CPU: accuracy, load time, s/note (steady and with load), memory.

Each runtime runs in a fresh process (imports and model load counted, as a user's run would;
``openvino`` needs ``pip install 'kiwi_cas[openvino]'``),
annotating 50 MTSamples notes for speed and the 16 dev notes (``--dev-split 16``) for accuracy:

    python benchmarks/runtimes.py --model DEV_MODEL

``DEV_MODEL`` should be a model trained without the dev notes (``kiwi-cas train bert --dev-split 16``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtsamples" / "train"
CONFIGS = [("onnx", "fp32"), ("openvino", "fp32"), ("torch", "fp32"), ("torch", "int8")]


def one(runtime: str, precision: str, model: str | None, n: int) -> dict:
    t0 = time.perf_counter()
    from kiwi_cas.core.evaluate import evaluate
    from kiwi_cas.core.notes import NoteInput, extract_notes
    from kiwi_cas.core.spans import Document
    from kiwi_cas.extractors.config import BertConfig
    from kiwi_cas.extractors.registry import load_extractor
    from kiwi_cas.formats.documents import held_out, load_documents

    extractor = load_extractor(BertConfig(model=Path(model) if model else None, runtime=runtime, precision=precision))
    loaded = time.perf_counter() - t0
    docs = load_documents(TRAIN)
    texts = [d.text for d in docs[:n]]
    t = time.perf_counter()
    for i in range(0, len(texts), 8):
        extract_notes(extractor, [NoteInput(x) for x in texts[i:i + 8]])
    steady = (time.perf_counter() - t) / len(texts)
    total = (time.perf_counter() - t0) / len(texts)
    dev = [docs[i] for i in sorted(held_out(len(docs), 16))]
    pred = extract_notes(extractor, [NoteInput(d.text) for d in dev])
    r = evaluate(dev, [Document(d.name, d.text, p) for d, p in zip(dev, pred)]).as_dict()
    return {"runtime": runtime, "precision": precision, "load_s": round(loaded, 2), "steady_s_per_note": round(steady, 3),
            "s_per_note_with_load": round(total, 3), "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "ner_f1": r["ner"]["exact"]["micro"]["f1"], "re_f1": r["re"]["exact"]["micro"]["f1"]}


def cpu_features() -> str:
    """The vector units that decide these figures (a runtime may pick other kernels on AVX-512 or AMX)."""
    try:
        flags = set(next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")).split())
    except (OSError, StopIteration):
        return "cpu flags unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--one", nargs=2, metavar=("RUNTIME", "PRECISION"),
                    help="measure one runtime in this process and print its row as JSON")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, args.model, args.n)))
        return
    print(f"machine: {platform.processor() or platform.machine()} ({cpu_features()}), {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.n} notes for speed, 16 dev notes for accuracy")
    print("| runtime | precision | load s | s/note steady | s/note incl. load | max RSS MB | NER exact F1 | RE e2e exact F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for runtime, precision in CONFIGS:
        cmd = [sys.executable, __file__, "--one", runtime, precision, "-n", str(args.n)]
        if args.model:
            cmd += ["--model", args.model]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"| {runtime} | {precision} | {r['load_s']} | {r['steady_s_per_note']} | {r['s_per_note_with_load']} "
              f"| {r['max_rss_mb']} | {r['ner_f1']:.3f} | {r['re_f1']:.3f} |")


if __name__ == "__main__":
    main()
