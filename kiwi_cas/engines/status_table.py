"""The manifest and the status table of a distributed run, as Parquet files in the output folder.

- ``kiwi-manifest.parquet``: one row per input (source, output, size, mtime_ns, input_key,
  todo). It is what the cluster reads and splits among its workers, so the driver never
  hands millions of paths to a ``read_*`` call. ``input_key`` fingerprints the listing
  (path, size, modification time): a changed input is annotated again on ``--resume``.
- ``kiwi-status.parquet``: one row per input and its latest attempt: status (ok / failed),
  error class and message (never note text), counts written, seconds, worker. Each worker
  batch writes its rows as a part file under ``.kiwi-status/`` right after its outputs, so a
  killed driver loses nothing; the driver folds the parts into the table at the end, and
  ``--resume`` reads table and parts alike.

pyarrow only; no Ray here, so the table can be read anywhere (pandas, DuckDB, Spark).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kiwi_cas.engines.discover import WorkItem

MANIFEST = "kiwi-manifest.parquet"
STATUS = "kiwi-status.parquet"
PARTS = ".kiwi-status"

MANIFEST_SCHEMA = pa.schema([
    ("source", pa.string()), ("output", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
    ("input_key", pa.string()), ("todo", pa.bool_()),
])

STATUS_SCHEMA = pa.schema([
    ("source", pa.string()), ("output", pa.string()), ("status", pa.string()),
    ("error_type", pa.string()), ("message", pa.string()),
    ("entities", pa.int64()), ("modifiers", pa.int64()), ("relations", pa.int64()),
    ("seconds", pa.float64()), ("worker", pa.string()), ("input_key", pa.string()),
    ("finished", pa.timestamp("ms", tz="UTC")),
])


def input_key(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(f"{path}\0{size}\0{mtime_ns}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ManifestRow:
    item: WorkItem
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        return input_key(str(self.item.source), self.size, self.mtime_ns)


def stat_items(items: list[WorkItem]) -> list[ManifestRow]:
    """Size and modification time of each input (a vanished input gets -1: its worker reports it)."""
    rows = []
    for item in items:
        try:
            st = os.stat(item.source)
            rows.append(ManifestRow(item, st.st_size, st.st_mtime_ns))
        except OSError:
            rows.append(ManifestRow(item, -1, -1))
    return rows


def write_manifest(outdir: Path, rows: list[ManifestRow], todo: set[str]) -> Path:
    table = pa.table({
        "source": [str(r.item.source) for r in rows], "output": [str(r.item.output) for r in rows],
        "size": [r.size for r in rows], "mtime_ns": [r.mtime_ns for r in rows],
        "input_key": [r.key for r in rows], "todo": [str(r.item.source) in todo for r in rows],
    }, schema=MANIFEST_SCHEMA)
    return _write_atomic(table, outdir / MANIFEST)


def write_part(outdir: Path, rows: list[dict]) -> None:
    """A worker's status rows for one batch, written atomically under ``.kiwi-status/``."""
    parts = outdir / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    _write_atomic(pa.Table.from_pylist(rows, schema=STATUS_SCHEMA), parts / f"part-{uuid.uuid4().hex}.parquet")


def read_status(outdir: Path) -> dict[str, dict]:
    """The latest row per source over the table and any parts a killed run left."""
    tables = []
    if (outdir / STATUS).exists():
        tables.append(pq.read_table(outdir / STATUS, schema=STATUS_SCHEMA))
    tables.extend(pq.read_table(p, schema=STATUS_SCHEMA) for p in sorted((outdir / PARTS).glob("part-*.parquet")))
    latest: dict[str, dict] = {}
    for table in tables:
        for row in table.to_pylist():
            old = latest.get(row["source"])
            if old is None or row["finished"] >= old["finished"]:
                latest[row["source"]] = row
    return latest


def fold_parts(outdir: Path, sources: set[str] | None = None) -> pa.Table:
    """Fold the parts into ``kiwi-status.parquet`` (one row per source, latest attempt) and remove them.

    ``sources``: keep only these inputs' rows (the inputs of this run), so the table never
    lists files that are no longer inputs.
    """
    latest = read_status(outdir)
    rows = [r for s, r in sorted(latest.items()) if sources is None or s in sources]
    table = pa.Table.from_pylist(rows, schema=STATUS_SCHEMA)
    _write_atomic(table, outdir / STATUS)
    # the folder goes whole: the parts now folded, and any part an actor killed mid-write left half-written
    shutil.rmtree(outdir / PARTS, ignore_errors=True)
    return table


def _write_atomic(table: pa.Table, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
