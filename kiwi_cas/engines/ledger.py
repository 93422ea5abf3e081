"""The driver's record of a run over an output folder: what is done, what failed, which typesystems.

Engines do the work; the ledger, on the driver, decides what is left to do (``--resume``),
keeps ``errors.jsonl`` (file, error type, message; never note text), keeps one
``TypeSystem.xml`` per output folder (the merge of every typesystem used there) and sums
the counts into a :class:`RunSummary`. Any engine (local processes, a cluster) can feed it.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kiwi_cas.cas.io import atomic_write, write_typesystem
from kiwi_cas.cas.typesystem import merged_typesystem
from kiwi_cas.core.spans import Counts
from kiwi_cas.engines.discover import WorkItem
from kiwi_cas.errors import TypeSystemError, UsageError, from_os_error


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
    def tried(self) -> int:
        """Files annotated or failed in this run (skipped ones were done by an earlier run)."""
        return self.ok + self.failed

    @property
    def notes_per_second(self) -> float:
        return self.tried / self.seconds if self.seconds else 0.0


class RunLedger:
    """Open with the run's items; ``todo`` is what is left; ``record`` each result; ``close`` at the end."""

    ERRORS = "errors.jsonl"
    TYPESYSTEM = "TypeSystem.xml"
    LOCK = ".kiwi-cas.lock"

    def __init__(self, outdir: Path, items: list[WorkItem], resume: bool,
                 typesystems_of: Callable[[WorkItem], tuple[str, ...]] = lambda item: (),
                 done: Callable[[WorkItem], bool] = lambda item: item.output.exists()) -> None:
        """``typesystems_of`` gives an input's typesystem files, for the outputs a resumed run skips;
        ``done`` says whether ``--resume`` may skip an item (default: its output exists)."""
        self.outdir = outdir
        try:
            outdir.mkdir(parents=True, exist_ok=True)
            self._lock = self._take_lock(outdir / self.LOCK)
            self._remove_temporaries()
        except OSError as exc:
            raise from_os_error(exc, f"cannot use the output folder {outdir}") from None
        self.summary = RunSummary()
        self.todo = [i for i in items if not (resume and done(i))]
        self.summary.skipped = len(items) - len(self.todo)
        self._ts_paths: dict[Path, set[str]] = {}
        errors = outdir / self.ERRORS
        if resume:
            todo = set(self.todo)
            for item in items:
                if item not in todo and item.output.exists():
                    self._ts_paths.setdefault(item.output.parent, set()).update(typesystems_of(item))
            for folder in self._ts_paths:  # a kill may have left a folder without (or with an old) TypeSystem.xml
                self._write_typesystem(folder)
            self._keep_errors_of_others(errors, {str(i.source) for i in self.todo})
        self._errlog = self._guard(lambda: errors.open("a" if resume else "w", encoding="utf-8"), errors)

    def _remove_temporaries(self) -> None:
        """Half-written files (``.NAME.*.tmp``, renamed over NAME once whole) left by a writer that was killed:
        by an earlier run at open, or by a worker killed during this run (a Ray actor, a pool process) at close.
        The lock keeps other runs out of the folder, so none of them is still being written."""
        for stale in self.outdir.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)

    @staticmethod
    def _take_lock(path: Path):
        """One run per output folder: a second one would redo all the work and race on its files."""
        fh = path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise UsageError(f"another kiwi-cas run (pid {holder}) is writing to {path.parent}; wait for it to "
                             "finish or choose another output folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        return fh

    def _keep_errors_of_others(self, errors: Path, retried: set[str]) -> None:
        """errors.jsonl keeps one current line per file: the files retried now lose their old line."""
        if not errors.exists():
            return
        kept, seen = [], set()
        for line in reversed(errors.read_text(encoding="utf-8").splitlines()):
            try:
                name = json.loads(line)["file"]
            except (ValueError, KeyError, TypeError):
                continue
            if name not in retried and name not in seen:
                seen.add(name)
                kept.append(line)
        self._guard(lambda: atomic_write(errors, "".join(x + "\n" for x in reversed(kept)).encode("utf-8")), errors)

    @staticmethod
    def _guard(action, path: Path):
        try:
            return action()
        except OSError as exc:
            raise from_os_error(exc, f"cannot write {path}") from None

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
            line = json.dumps({"file": r.source, "error_type": r.error_type, "message": r.message}) + "\n"
            self._guard(lambda: (self._errlog.write(line), self._errlog.flush()), self.outdir / self.ERRORS)

    def close(self) -> None:
        try:
            self._errlog.close()
        except OSError:
            pass  # a full disk: the lines written so far stay
        try:
            self._remove_temporaries()
        except OSError:
            pass  # the next run into this folder removes them at open
        (self.outdir / self.LOCK).unlink(missing_ok=True)  # still held: no other run can have taken it
        self._lock.close()

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
        self._guard(lambda: write_typesystem(ts, target), target)
        return r

    def _write_typesystem(self, folder: Path) -> None:
        try:
            ts = merged_typesystem(tuple(sorted(self._ts_paths[folder])))
        except TypeSystemError:
            return  # outputs of different typesystems in one folder: left as they are
        self._guard(lambda: write_typesystem(ts, folder / self.TYPESYSTEM), folder / self.TYPESYSTEM)
