"""End-to-end throughput of `annotate`: read XMI, extract, write XMI (BERT by default, or LLaMA).

Prints notes/s and seconds/note, split into XMI I/O, model and other, model load
included, and the machine it ran on. Inputs: MTSamples notes from ../shared (as XMI
without annotations) when present, else the examples, repeated to N notes.

    python benchmarks/throughput.py -n 50 [--threads 2] [--batch-size 8] [--runtime onnx|openvino|torch]
    python benchmarks/throughput.py -n 4 --extractor llama [--unconstrained]
"""

from __future__ import annotations

import argparse
from collections import Counter
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_TRAIN = REPO.parent / "shared" / "data" / "mtsamples" / "train"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def make_inputs(n: int, folder: Path) -> list[Path]:
    from cassis import Cas

    from kiwi_cas.cas.typesystem import merged_typesystem

    sources = sorted(SHARED_TRAIN.glob("*.txt")) if SHARED_TRAIN.exists() else sorted((REPO / "examples" / "notes").glob("*.txt"))
    ts = merged_typesystem(())
    paths = []
    for i in range(n):
        cas = Cas(typesystem=ts)
        cas.sofa_string = sources[i % len(sources)].read_bytes().decode("utf-8")
        p = folder / f"note{i:03d}.xmi"
        cas.to_xmi(p)
        paths.append(p)
    (folder / "TypeSystem.xml").write_text(ts.to_xml())
    return paths, sources


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model", default=None)
    ap.add_argument("--extractor", default="bert", choices=["bert", "llama"])
    ap.add_argument("--runtime", default=None, help="bert only: onnx (default) | openvino | torch")
    ap.add_argument("--backend", default=None, help="llama only")
    ap.add_argument("--unconstrained", action="store_true")
    ap.add_argument("--precision", default=None, choices=["int8", "fp32", "auto", "bf16"],
                    help="bert: fp32 | int8 (torch runtime); llama: auto | fp32 | bf16")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kiwi-bench-"))
    (tmp / "in").mkdir()
    inputs, sources = make_inputs(args.n, tmp / "in")

    t_start = time.perf_counter()
    from kiwi_cas.annotate.annotator import AnnotatorConfig, KiwiAnnotator
    from kiwi_cas.cas.io import atomic_write, load_input, serialize
    from kiwi_cas.extractors.registry import extractor_config

    annotator = KiwiAnnotator(AnnotatorConfig(extractor=extractor_config(
        args.extractor, model=args.model, threads=args.threads or None, runtime=args.runtime, backend=args.backend,
        constrained=False if args.unconstrained else None, precision=args.precision)))
    annotator.initialize()
    t_loaded = time.perf_counter()
    extractor = annotator.extractor
    model_time = 0.0
    inner = extractor.extract

    def timed_extract(*a, **kw):
        nonlocal model_time
        t = time.perf_counter()
        try:
            return inner(*a, **kw)
        finally:
            model_time += time.perf_counter() - t

    extractor.extract = timed_extract
    io_time = 0.0
    annotate_time = 0.0
    unaligned: Counter = Counter()
    for i in range(0, len(inputs), args.batch_size):
        batch = inputs[i:i + args.batch_size]
        t = time.perf_counter()
        loaded = [load_input(p) for p in batch]
        io_time += time.perf_counter() - t
        t = time.perf_counter()
        for c in annotator.process_batch([lc.cas for lc in loaded]):
            unaligned.update(c.unaligned)
        annotate_time += time.perf_counter() - t
        t = time.perf_counter()
        for p, lc in zip(batch, loaded):
            atomic_write(tmp / "out" / p.name, serialize(lc.cas, "xmi"))
        io_time += time.perf_counter() - t
    total = time.perf_counter() - t_start
    load_time = t_loaded - t_start
    other = annotate_time - model_time
    n = len(inputs)
    avg_words = sum(len(s.read_text().split()) for s in sources) / len(sources)
    totals = annotator.collection_process_complete()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch threads {__import__('torch').get_num_threads()}, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(f"notes: {n} (avg {avg_words:.0f} words), batch size {args.batch_size}; "
          f"written {totals.entities} entities, {totals.modifiers} modifiers, {totals.relations} relations")
    print(f"total (model load included): {total:.2f} s -> {n / total:.2f} notes/s, {total / n:.3f} s/note")
    print(f"  model load   {load_time:7.2f} s  ({load_time / n:.3f} s/note)")
    print(f"  XMI I/O      {io_time:7.2f} s  ({io_time / n:.3f} s/note)")
    print(f"  model        {model_time:7.2f} s  ({model_time / n:.3f} s/note)")
    print(f"  other        {other:7.2f} s  ({other / n:.3f} s/note: sentences, CAS writing)")
    print(f"steady state (load excluded): {(total - load_time) / n:.3f} s/note")
    stats = getattr(getattr(extractor, "backend", None), "stats", None)
    if stats is not None and stats.seconds:
        print(f"LLaMA ({extractor.backend_name}, {extractor.backend.precision}, constrained={extractor.constrained}): "
              f"{stats.prompts} prompts, "
              f"{stats.prompts / stats.seconds:.2f} prompts/s, {stats.generated_tokens / stats.seconds:.1f} "
              f"generated tokens/s" + (f", {stats.forward_passes} forward passes over {stats.positions} positions "
                                       f"for {stats.generated_tokens} tokens" if stats.forward_passes else "")
              + f"; alignment dropped {dict(unaligned) or 'nothing'}")


if __name__ == "__main__":
    main()
