"""Bulk runs: resume after a kill, exit codes, parallel workers, output layout."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from kiwi_cas.cas.io import load_xmi
from kiwi_cas.cas.writer import read_kiwi
from tests.conftest import REPO
from tests.helpers import cli

EXAMPLES = REPO / "examples"


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "kiwi_cas.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _notes(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    sources = sorted((EXAMPLES / "notes").glob("*.txt"))
    for i in range(n):
        shutil.copy(sources[i % len(sources)], folder / f"note{i:02d}.txt")
    return folder


def _kiwi(path: Path):
    ext = read_kiwi(load_xmi(path).cas)
    return ({s.key() for s in ext.entities}, {s.key() for s in ext.modifiers},
            {(r.entity.key(), r.modifier.key()) for r in ext.relations})


def test_killed_run_resumes_to_the_same_outputs(tmp_path):
    notes = _notes(tmp_path, 12)
    full = _cli("annotate", notes, "-o", tmp_path / "full", "--batch-size", "1")
    assert full.wait(timeout=600) == 0, full.stderr.read()[-2000:]
    part = tmp_path / "part"
    proc = _cli("annotate", notes, "-o", part, "--batch-size", "1")
    deadline = time.time() + 300
    while time.time() < deadline and len(list(part.glob("*.xmi"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(part.glob("*.xmi")))
    assert 3 <= done < 12, done
    resumed = _cli("annotate", notes, "-o", part, "--resume", "--batch-size", "1")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    assert f"{done} skipped" in err
    assert not list(part.glob(".*.tmp"))
    for out in sorted((tmp_path / "full").glob("*.xmi")):
        assert _kiwi(out) == _kiwi(part / out.name), out.name
    assert (part / "TypeSystem.xml").exists()


def test_files_half_written_by_a_worker_killed_during_the_run_are_removed_at_its_end(tmp_path):
    """A worker killed between writing a file and renaming it (a Ray actor, a pool process) leaves a
    ``.NAME.*.tmp`` behind while the run goes on; the run removes it when it ends, not only the next run."""
    from kiwi_cas.engines.ledger import RunLedger

    out = tmp_path / "out"
    ledger = RunLedger(out, [], resume=False)
    (out / ".kiwi-status").mkdir()
    (out / "xmi").mkdir()
    left = [out / ".kiwi-status" / ".part-0f3a.parquet.6803.tmp", out / "xmi" / ".note1.xmi.9c2e41d0aa17.tmp"]
    finished = [out / ".kiwi-status" / "part-0f3a.parquet", out / "xmi" / "note1.xmi"]
    for path in left + finished:
        path.write_bytes(b"x")
    ledger.close()
    assert not any(p.exists() for p in left) and all(p.exists() for p in finished)
    # the Ray engine folds its status parts before that: a half-written part must not keep their folder
    from kiwi_cas.engines import status_table

    finished[0].unlink()
    left[0].write_bytes(b"x")
    status_table.fold_parts(out)
    assert not (out / ".kiwi-status").exists() and (out / status_table.STATUS).exists()


def test_exit_status_and_error_log(tmp_path):
    notes = _notes(tmp_path, 2)
    (notes / "broken.xmi").write_text("<xmi:XMI")
    err = cli("annotate", notes, "-o", tmp_path / "out", expect=1).stderr
    assert "2 ok, 1 failed" in err
    assert re.search(r"^speed: \d+\.\d\d notes/s, \d+\.\d\d s/note over \d+\.\ds$", err, re.M)  # per file tried
    [line] = (tmp_path / "out" / "errors.jsonl").read_text().splitlines()
    assert set(json.loads(line)) == {"file", "error_type", "message"}


def test_usage_errors_exit_2(tmp_path):
    assert "no input matches" in cli("annotate", tmp_path / "does-not-exist", "-o", tmp_path / "out", expect=2).stderr


def test_parallel_jobs_match_serial(tmp_path):
    notes = _notes(tmp_path, 4)
    for jobs, out in ((1, "serial"), (2, "parallel")):
        proc = _cli("annotate", notes, "-o", tmp_path / out, "--jobs", jobs, "--batch-size", "1",
                    env={**os.environ, "KIWI_THREADS": "1"})
        assert proc.wait(timeout=600) == 0
    for out in sorted((tmp_path / "serial").glob("*.xmi")):
        assert _kiwi(out) == _kiwi(tmp_path / "parallel" / out.name)


def test_folder_structure_is_mirrored_and_help_teaches(tmp_path):
    cli("annotate", EXAMPLES, "-o", tmp_path / "out")
    names = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.xmi"))
    assert "xmi/orthopedic_consult.xmi" in names and "notes/orthopedic_consult.xmi" in names
    assert (tmp_path / "out" / "xmi" / "TypeSystem.xml").exists()
    help_text = cli("annotate", "--help").stdout
    assert "Examples:" in help_text and "--resume" in help_text


def _pids_writing_to(folder: Path) -> list[int]:
    """Processes (workers are forks of the driver) whose command line names ``folder``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(folder).encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def test_workers_die_with_a_killed_driver(tmp_path):
    notes = _notes(tmp_path, 16)
    out = tmp_path / "out"
    proc = _cli("annotate", notes, "-o", out, "--jobs", "2", "--batch-size", "1",
                env={**os.environ, "KIWI_THREADS": "1"})
    deadline = time.time() + 300
    while time.time() < deadline and len(_pids_writing_to(out)) < 3:
        time.sleep(0.1)
    assert len(_pids_writing_to(out)) >= 3  # the driver and its two workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and _pids_writing_to(out):
        time.sleep(0.1)
    assert _pids_writing_to(out) == []


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    notes = _notes(tmp_path, 12)
    out = tmp_path / "out"
    first = _cli("annotate", notes, "-o", out, "--batch-size", "1")
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("*.xmi")):
        time.sleep(0.05)
    err = cli("annotate", notes, "-o", out, expect=2).stderr
    assert "another kiwi-cas run" in err and str(first.pid) in err
    assert first.wait(timeout=600) == 0


def test_resume_keeps_one_error_line_per_file_and_rebuilds_the_typesystem(tmp_path):
    notes = _notes(tmp_path, 2)
    (notes / "broken.xmi").write_text("<xmi:XMI")
    out = tmp_path / "out"
    cli("annotate", notes, "-o", out, expect=1)
    (out / "TypeSystem.xml").unlink()  # as a kill between an output and its TypeSystem.xml would leave it
    for _ in range(2):
        cli("annotate", notes, "-o", out, "--resume", expect=1)
    lines = (out / "errors.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["file"].endswith("broken.xmi")
    assert (out / "TypeSystem.xml").exists()


def test_a_full_disk_stops_the_run_with_one_line_and_what_was_written_stays_valid(tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        import pytest

        pytest.skip("needs root to mount a small tmpfs")
    notes = _notes(tmp_path, 40)
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)]).returncode != 0:
        import pytest

        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = _cli("annotate", notes, "-o", disk / "out", "--batch-size", "1")
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 5, err[-2000:]
        assert "Traceback" not in err
        [line] = [x for x in err.splitlines() if x.startswith("error:")]
        assert "No space left on device" in line
        written = sorted((disk / "out").glob("*.xmi"))
        assert written and not list((disk / "out").glob(".*.tmp"))
        for path in written:
            load_xmi(path)  # every output present is complete
    finally:
        subprocess.run(["umount", str(disk)])
