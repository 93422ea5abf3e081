"""The Ray engine: the same corpus run as the local engine, on a Ray cluster (or a local Ray instance).

Data path: the driver lists the inputs and writes ``kiwi-manifest.parquet`` (see
:mod:`kiwi_cas.engines.status_table`); Ray Data reads that manifest, cuts it into small
blocks and feeds them to a pool of :class:`AnnotateActor` (``ActorPoolStrategy``), each of
which loads the model once, reads its inputs from the shared filesystem, annotates them
through :func:`kiwi_cas.annotate.job.annotate_sources` (exactly what the local engine runs,
so outputs are identical), writes each output itself atomically and a status part for
the batch. Only small status rows travel back to the driver, which feeds the same
:class:`~kiwi_cas.engines.ledger.RunLedger` as the local engine (``errors.jsonl``,
``TypeSystem.xml``, the summary) and folds the status parts into ``kiwi-status.parquet``.

Faults: an actor killed mid-batch is restarted by Ray and its batch retried (outputs are
replaced atomically with the same bytes; the status keeps one row per input). A killed
driver leaves complete outputs and status parts; ``--resume`` skips every input whose
latest status is ``ok`` for an unchanged input and whose output exists, and retries the
rest. No note text is ever in a status row, an error line or a log line: errors are caught
per document inside the actor and described without quoting library messages.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kiwi_cas.annotate.annotator import AnnotatorConfig, KiwiAnnotator
from kiwi_cas.annotate.job import ReadOptions
from kiwi_cas.core.spans import Counts
from kiwi_cas.engines import status_table
from kiwi_cas.engines.discover import WorkItem
from kiwi_cas.engines.ledger import FileResult, RunSummary
from kiwi_cas.engines.local import RunOptions, open_ledger, process_items, progress_bar
from kiwi_cas.errors import KiwiError, SetupError

#: rows per Ray block: small enough that every actor gets work, big enough that scheduling stays cheap
BLOCK_BATCHES = 4


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: ``address`` None starts a local Ray instance; ``actors`` the pool size."""

    address: str | None = None
    actors: int | None = None  # None: as many as the cluster's CPUs allow, keeping one CPU free for reads
    cpus_per_actor: float = 1.0
    #: GPUs per actor: Ray places each actor on a GPU node, where the LLaMA extractor's backend "auto"
    #: picks vLLM (one engine per actor, loaded once); 0 for the BERT path and CPU-only LLaMA
    gpus_per_actor: float = 0.0


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ModuleNotFoundError:
        raise SetupError("the Ray engine needs Ray: pip install 'kiwi_cas[ray]'", "missing_ray") from None
    return ray


class AnnotateActor:
    """One model per actor; annotates a block of manifest rows and writes their outputs and status."""

    def __init__(self, config: AnnotatorConfig, read: ReadOptions, outdir: str) -> None:
        self.annotator = KiwiAnnotator(config)
        self.annotator.initialize()
        self.read = read
        self.outdir = Path(outdir)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch):
        import pyarrow as pa

        rows = batch.to_pylist()
        items = [WorkItem(Path(r["source"]), Path(r["output"])) for r in rows]
        t0 = time.perf_counter()
        results = process_items(self.annotator, items, self.read)  # catches per document; fatal errors raise
        seconds = (time.perf_counter() - t0) / max(len(items), 1)
        now = datetime.now(timezone.utc)
        status_table.write_part(self.outdir, [{
            "source": r.source, "output": r.output, "status": "ok" if r.ok else "failed",
            "error_type": r.error_type, "message": r.message, "entities": r.counts.entities,
            "modifiers": r.counts.modifiers, "relations": r.counts.relations, "seconds": seconds,
            "worker": self.worker, "input_key": row["input_key"], "finished": now,
        } for r, row in zip(results, rows)])
        return pa.table({
            "source": [r.source for r in results], "output": [r.output for r in results],
            "ok": [r.ok for r in results], "error_type": [r.error_type for r in results],
            "message": [r.message for r in results],
            "counts": [json.dumps({"entities": r.counts.entities, "modifiers": r.counts.modifiers,
                                   "relations": r.counts.relations, "dropped": r.counts.dropped,
                                   "unaligned": dict(r.counts.unaligned), "warnings": r.counts.warnings})
                       for r in results],
            "typesystems": [list(r.typesystems) for r in results],
        })


def _result(row: dict) -> FileResult:
    c = json.loads(row["counts"])
    counts = Counts(documents=1 if row["ok"] else 0, entities=c["entities"], modifiers=c["modifiers"],
                    relations=c["relations"], dropped=c["dropped"], warnings=c["warnings"])
    counts.unaligned.update(c["unaligned"])
    return FileResult(row["source"], row["output"], row["ok"], row["error_type"], row["message"], counts,
                      tuple(row["typesystems"] or ()))


def _pool(ray, options: RayOptions) -> tuple[int, float]:
    """Pool size and CPUs per actor. Ray Data's own read, filter and repartition tasks each ask for a
    whole CPU: a pool that leaves less than one free never gets its input and the run hangs
    (measured on 2 CPUs: 2 actors of 1 CPU, and 2 actors of 0.75 CPU), so the pool leaves one CPU."""
    total = float(ray.cluster_resources().get("CPU", 1.0))
    if total < 2:
        raise SetupError(f"the Ray engine needs a cluster with at least 2 CPUs (this one has {total:g}): one for "
                         "Ray Data's reads, the rest for annotation; use --engine local", "ray_too_small")
    cpus = options.cpus_per_actor
    actors = options.actors or max(1, int((total - 1) // cpus))
    if actors * cpus > total - 1:
        cpus = max(0.1, math.floor((total - 1) / actors * 10) / 10)
    return actors, cpus


def run_ray(items: list[WorkItem], config: AnnotatorConfig, options: RunOptions, ray_options: RayOptions,
            show_progress: bool | None = None) -> RunSummary:
    """Annotate ``items`` into ``options.outdir`` on Ray; same outputs, ledger and summary as :func:`run_local`."""
    ray = _import_ray()
    outdir = options.outdir
    rows = status_table.stat_items(items)
    keys = {str(r.item.source): r.key for r in rows}
    latest = status_table.read_status(outdir) if options.resume else {}

    def done(item: WorkItem) -> bool:
        row = latest.get(str(item.source))
        return (row is not None and row["status"] == "ok" and row["input_key"] == keys[str(item.source)]
                and item.output.exists())

    ledger = open_ledger(items, options, done=done)
    started = time.time()
    progress = progress_bar(len(ledger.todo), "annotate (ray)", show_progress)
    try:
        manifest = status_table.write_manifest(outdir, rows, {str(i.source) for i in ledger.todo})
        if ledger.todo:
            _init(ray, ray_options.address)
            try:
                for row in _execute(ray, manifest, config, options, ray_options):
                    ledger.record(_result(row))
                    progress.update(1)
            finally:
                ray.shutdown()
        status_table.fold_parts(outdir, set(keys))
    finally:
        ledger.close()
        progress.close()
    ledger.summary.seconds = time.time() - started
    return ledger.summary


def _init(ray, address: str | None) -> None:
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR,
                 # workers' own log lines stay in Ray's session logs; the status rows carry what matters
                 log_to_driver=False,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
        where = address or "a local Ray instance"
        raise SetupError(f"cannot start or join {where}: {type(exc).__name__}", "ray_unavailable") from None


def _execute(ray, manifest: Path, config: AnnotatorConfig, options: RunOptions, ray_options: RayOptions):
    from ray.data import ActorPoolStrategy, DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver's own bar and summary, as in the local run
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    ctx.log_internal_stack_trace = False
    actors, cpus = _pool(ray, ray_options)
    threads = max(1, int(cpus))
    cfg = dataclasses.replace(config, extractor=dataclasses.replace(config.extractor, threads=threads))
    ds = (ray.data.read_parquet(str(manifest), columns=["source", "output", "input_key", "todo"])
          .filter(expr="todo")
          .repartition(target_num_rows_per_block=options.batch_size * BLOCK_BATCHES)
          .map_batches(AnnotateActor, fn_constructor_kwargs={"config": cfg, "read": options.read,
                                                             "outdir": str(options.outdir)},
                       batch_size=options.batch_size, batch_format="pyarrow",
                       compute=ActorPoolStrategy(size=actors), num_cpus=cpus,
                       num_gpus=ray_options.gpus_per_actor or None))
    # Ray Data restarts a killed actor and retries its batch by default (max_restarts=-1)
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            yield from batch.to_pylist()
    except Exception as exc:  # a fatal error inside an actor (full disk, model failed to load)
        cause = _kiwi_cause(exc)
        if cause is not None:
            raise cause from None
        raise SetupError(f"the Ray run failed: {type(exc).__name__}; outputs written so far are complete: "
                         "rerun with --resume", "ray_failed") from None


def _kiwi_cause(exc: BaseException) -> KiwiError | None:
    """The KiwiError an actor raised, through Ray's wrapping exceptions."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KiwiError):
            return exc
        cause = getattr(exc, "cause", None)
        exc = cause if isinstance(cause, BaseException) else exc.__cause__
    return None
