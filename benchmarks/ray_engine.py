"""Throughput of ``--engine ray`` against the local engine on the same notes and machine.

Each row is a fresh ``kiwi-cas annotate`` process (model load and, for Ray, starting a local
Ray instance included), over N copies of the example notes made distinct. Prints wall time,
s/note, the steady rate (from the status table: seconds per note inside the workers) and
the Ray/local overhead ratio, then a sizing for a 10-million-note corpus from these figures.

    # here Ray must stay on loopback: run inside a private network namespace (root)
    unshare -n bash -c 'ip link set lo up; python benchmarks/ray_engine.py --notes 80'
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_notes(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    sources = sorted((REPO / "examples" / "notes").glob("*.txt"))
    for i in range(n):
        text = sources[i % len(sources)].read_text()
        (folder / f"note{i:04d}.txt").write_text(text + f"\nFollow-up visit {i + 1} in {i % 7 + 2} weeks.\n")


def run(notes: Path, out: Path, *args: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kiwi_cas.cli", "annotate", str(notes), "-o", str(out), *args],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}: {proc.stderr[-1500:]}")
    return wall


def worker_seconds(out: Path) -> float:
    import pyarrow.parquet as pq

    table = pq.read_table(out / "kiwi-status.parquet")
    return sum(table.column("seconds").to_pylist()) / max(table.num_rows, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notes", type=int, default=80)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="kiwi-bench-") as tmp:
        notes, out = Path(tmp) / "notes", Path(tmp) / "out"
        make_notes(notes, args.notes)
        bs = ["--batch-size", str(args.batch_size)]
        rows = []
        local1 = run(notes, out, *bs)
        rows.append(("local", "1 process", local1, None))
        local2 = run(notes, out, *bs, "--jobs", "2")
        rows.append(("local", "2 processes", local2, None))
        ray1 = run(notes, out, *bs, "--engine", "ray", "--jobs", "1", "--cpus-per-job", "1")  # 1 CPU stays for reads
        rows.append(("ray", "1 actor x 1 CPU", ray1, worker_seconds(out)))
        ray2 = run(notes, out, *bs, "--engine", "ray", "--jobs", "2", "--cpus-per-job", "0.5")
        rows.append(("ray", "2 actors x 0.5 CPU", ray2, worker_seconds(out)))
    n = args.notes
    print(f"{n} notes, batch {args.batch_size}, {cores} cores; fresh process per row (load and start included)\n")
    print("| engine | workers | wall s | s/note | notes/s | worker s/note (status table) |")
    print("|---|---|---|---|---|---|")
    for engine, workers, wall, ws in rows:
        print(f"| {engine} | {workers} | {wall:.1f} | {wall / n:.3f} | {n / wall:.2f} | "
              f"{'' if ws is None else f'{ws:.3f}'} |")
    best_local, best_ray = min(local1, local2), min(ray1, ray2)
    print(f"\nRay/local wall-time ratio: 1 worker {ray1 / local1:.2f}, best of each {best_ray / best_local:.2f}; "
          f"Ray scaling 1 -> 2 actors: {ray1 / ray2:.2f}x")
    # sizing: steady per-note cost inside a worker, per CPU core, from the 1-actor Ray row
    per_note_core = rows[2][3]
    fixed = ray1 - per_note_core * n
    corpus = 10_000_000
    core_hours = corpus * per_note_core / 3600
    print(f"\n10M notes at {per_note_core:.3f} s/note per core (this CPU, notes of this size): "
          f"{core_hours:,.0f} core-hours; e.g. 20 nodes x 32 cores -> {core_hours / 640:.1f} h, "
          f"plus ~{fixed:.0f} s start-up per run (Ray start, actor model load)")


if __name__ == "__main__":
    main()
