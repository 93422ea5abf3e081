"""Load test of ``kiwi-cas serve``: N requests from C concurrent clients, against the CLI on the same notes.

Starts the service on a free loopback port, sends ``/api/process`` requests (the example
notes, made distinct), checks that every one comes back 200 with its own text, and prints
requests/s, p50/p95/max latency; then annotates the same notes with ``kiwi-cas annotate``
(fresh process, model load included) for notes/s.

    python benchmarks/http_load.py [--requests 500] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def notes(n: int) -> list[str]:
    sources = sorted((REPO / "examples" / "notes").glob("*.txt"))
    return [sources[i % len(sources)].read_text() + f"\nFollow-up visit {i + 1} in {i % 7 + 2} weeks.\n"
            for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    texts = notes(args.requests)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "kiwi_cas.cli", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/process"
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5)
                break
            except OSError:
                time.sleep(0.2)

        def call(text: str) -> tuple[float, bool]:
            body = json.dumps({"content": {"text": text}}).encode()
            req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=300) as resp:
                out = json.loads(resp.read())
            return time.perf_counter() - t0, resp.status == 200 and out["result"]["text"] == text

        call(texts[0])  # warm-up
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(call, texts))
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait()
    lat = sorted(r[0] for r in results)
    ok = sum(r[1] for r in results)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "notes"
        folder.mkdir()
        for i, text in enumerate(texts):
            (folder / f"n{i:04d}.txt").write_text(text)
        c0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kiwi_cas.cli", "annotate", str(folder), "-o", str(Path(tmp) / "out")],
                       check=True, capture_output=True)
        cli_wall = time.perf_counter() - c0
    n = len(texts)
    print(f"{n} requests, {args.clients} concurrent clients, one note per request; {ok}/{n} answered 200 with their text")
    print(f"service: {n / wall:.1f} requests/s; latency p50 {statistics.median(lat) * 1000:.0f} ms, "
          f"p95 {lat[int(0.95 * (n - 1))] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")
    print(f"CLI (kiwi-cas annotate, same notes, model load included): {n / cli_wall:.1f} notes/s")
    print(f"service / CLI throughput: {(n / wall) / (n / cli_wall):.2f}")
    if ok != n:
        sys.exit(1)


if __name__ == "__main__":
    main()
