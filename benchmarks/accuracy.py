"""Dev-set accuracy and speed of an extractor on held-out MTSamples notes.

Takes the same 16-note dev split as `kiwi-cas train bert --dev-split 16` (split seed 0)
from ../shared/data/mtsamples/train, annotates the notes end to end (.txt -> XMI), and
again with the gold entities given (`--task re`, the paper's RE setting), then prints
the evaluate report for both and seconds per note.

    python benchmarks/accuracy.py --extractor bert [--model DIR]
    python benchmarks/accuracy.py --extractor llama --model kiwi_cas/models/llama-mtsamples [--unconstrained]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

from kiwi_cas.annotate.annotator import AnnotatorConfig, KiwiAnnotator
from kiwi_cas.core.evaluate import evaluate, format_report
from kiwi_cas.core.spans import Counts
from kiwi_cas.engines.discover import discover
from kiwi_cas.engines.local import RunOptions, run_local
from kiwi_cas.extractors.config import ALL_PRECISIONS
from kiwi_cas.extractors.registry import extractor_config
from kiwi_cas.formats.convert import brat_folder_to_xmi
from kiwi_cas.formats.documents import held_out, load_documents

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtsamples" / "train"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extractor", default="bert", choices=["bert", "llama"])
    ap.add_argument("--model", default=None)
    ap.add_argument("--dev-split", type=int, default=16)
    ap.add_argument("--limit", type=int, default=0, help="score only the first N dev notes (LLaMA on CPU is slow)")
    ap.add_argument("--unconstrained", action="store_true")
    ap.add_argument("--backend", default=None, help="llama only")
    ap.add_argument("--precision", default=None, choices=ALL_PRECISIONS,
                    help="bert: fp32 | int8 (torch runtime); llama: auto | fp32 | bf16")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    files = sorted(TRAIN.glob("*.txt"))
    dev_idx = held_out(len(files), args.dev_split)
    dev_files = [files[i] for i in sorted(dev_idx)]
    if args.limit:
        dev_files = dev_files[:args.limit]
    work = Path(tempfile.mkdtemp(prefix="kiwi-acc-"))
    gold = work / "gold"
    gold.mkdir()
    for f in dev_files:
        shutil.copy(f, gold / f.name)
        shutil.copy(f.with_suffix(".ann"), gold / f.with_suffix(".ann").name)
    brat_folder_to_xmi(gold, work / "gold_entities", entities_only=True)
    plain = work / "plain"
    plain.mkdir()
    for f in dev_files:
        shutil.copy(f, plain / f.name)

    ext_config = extractor_config(args.extractor, model=args.model, backend=args.backend,
                                  constrained=False if args.unconstrained else None, precision=args.precision)
    t0 = time.perf_counter()
    loaded = KiwiAnnotator(AnnotatorConfig(extractor=ext_config))
    loaded.initialize()
    load_s = time.perf_counter() - t0
    results = {}
    unaligned = Counts()
    for name, src, task in (("end-to-end", plain, "all"), ("gold entities (--task re)", work / "gold_entities", "re")):
        annotator = KiwiAnnotator(dataclasses.replace(loaded.config, task=task), extractor=loaded.extractor)
        out = work / f"pred-{task}"
        t = time.perf_counter()
        summary = run_local(discover([str(src)], out), annotator.config, RunOptions(outdir=out), annotator=annotator,
                            show_progress=False)
        unaligned.unaligned.update(summary.counts.unaligned)
        secs = time.perf_counter() - t
        report = evaluate(load_documents(gold), load_documents(out))
        results[name] = {"seconds_per_note": secs / len(dev_files), "report": report.as_dict()}
        print(f"== {args.extractor} {name}: {len(dev_files)} notes, {secs / len(dev_files):.2f} s/note "
              f"(model load {load_s:.1f} s not included)")
        print(format_report(report))
        print()
    if unaligned.unaligned:
        print("LLaMA outputs dropped in alignment:", dict(unaligned.unaligned))
    stats = getattr(getattr(loaded.extractor, "backend", None), "stats", None)
    if stats is not None and stats.seconds:
        print(f"LLaMA generation ({loaded.extractor.backend.precision}): {stats.prompts} prompts, "
              f"{stats.prompts / stats.seconds:.2f} prompts/s, "
              f"{stats.generated_tokens / stats.seconds:.1f} generated tokens/s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
