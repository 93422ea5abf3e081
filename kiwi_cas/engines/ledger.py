"""The driver's record of a run over an output folder: what is done, what failed, which typesystems.

Engines do the work; the ledger, on the driver, decides what is left to do (``--resume``),
keeps ``errors.jsonl`` (file, error type, message; never note text), keeps one
``TypeSystem.xml`` per output folder (the merge of every typesystem used there) and sums
the counts into a :class:`RunSummary`. Any engine (local processes, a cluster) can feed it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kiwi_cas.cas.io import write_typesystem
from kiwi_cas.cas.typesystem import merged_typesystem
from kiwi_cas.core.spans import Counts
from kiwi_cas.engines.discover import WorkItem
from kiwi_cas.errors import TypeSystemError


@dataclass
class FileResult:
    """One input's result as the ledger records it."""

    source: str
    output: str
    ok: bool
    error_type: str | None = None
    message: str | None = None
    counts: Counts = field(default_factory=Counts)
    typesystems: tuple[str, ...] = ()


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    counts: Counts = field(default_factory=Counts)
    seconds: float = 0.0
    failures: list[FileResult] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (file, message), the first KEEP of them
    warned: int = 0

    KEEP = 1000

    @property
    def notes_per_second(self) -> float:
        return (self.ok + self.failed) / self.seconds if self.seconds else 0.0


class RunLedger:
    """Open with the run's items; ``todo`` is what is left; ``record`` each result; ``close`` at the end."""

    ERRORS = "errors.jsonl"
    TYPESYSTEM = "TypeSystem.xml"

    def __init__(self, outdir: Path, items: list[WorkItem], resume: bool) -> None:
        self.outdir = outdir
        outdir.mkdir(parents=True, exist_ok=True)
        for stale in outdir.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)  # left by a killed run; never a finished output
        self.summary = RunSummary()
        self.todo = [i for i in items if not (resume and i.output.exists())]
        self.summary.skipped = len(items) - len(self.todo)
        self._ts_paths: dict[Path, set[str]] = {}
        if resume:
            for item in items:
                if item.output.exists():
                    self._ts_paths.setdefault(item.output.parent, set())
        self._errlog = (outdir / self.ERRORS).open("a" if resume else "w", encoding="utf-8")

    def record(self, r: FileResult) -> None:
        if r.ok:
            r = self._with_typesystem(r)
        s = self.summary
        for message in r.counts.warnings:
            s.warned += 1
            if len(s.warnings) < s.KEEP:
                s.warnings.append((r.source, message))
        if r.ok:
            s.ok += 1
            s.counts += r.counts
        else:
            s.failed += 1
            s.counts.unaligned.update(r.counts.unaligned)
            if len(s.failures) < s.KEEP:
                s.failures.append(r)
            self._errlog.write(json.dumps({"file": r.source, "error_type": r.error_type, "message": r.message}) + "\n")
            self._errlog.flush()

    def close(self) -> None:
        self._errlog.close()

    def _with_typesystem(self, r: FileResult) -> FileResult:
        """Record the output's typesystem; an output whose typesystem conflicts is removed and failed."""
        folder = Path(r.output).parent
        known = self._ts_paths.setdefault(folder, set())
        new = set(r.typesystems) - known
        target = folder / self.TYPESYSTEM
        if not new and target.exists():
            return r
        try:
            ts = merged_typesystem(tuple(sorted(known | new)))
        except TypeSystemError as exc:
            Path(r.output).unlink(missing_ok=True)
            return FileResult(r.source, r.output, False, "typesystem_conflict",
                              f"its typesystem cannot share {self.TYPESYSTEM} with earlier outputs in that folder "
                              f"({exc}); annotate it into another folder")
        known |= new
        write_typesystem(ts, target)
        return r
