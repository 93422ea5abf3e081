"""The Ray engine against a real Ray: a local instance and a `ray start --head` cluster, on loopback only.

Ray advertises the machine's interface address, so every Ray process and driver here runs in
a private network namespace whose only interface is loopback (``unshare -n``; root). The
test process stays outside and joins it with ``nsenter``, so it can watch files and kill
processes by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine tests need pip install 'kiwi_cas[ray]'")
pq = pytest.importorskip("pyarrow.parquet")

from tests.conftest import REPO, XMI  # noqa: E402

EXAMPLES = REPO / "examples"
MARKER = "ZQXJ-PATIENT-NAME-4417"  # note text that must never reach a log, an error or the status table


@pytest.fixture(scope="module")
def netns():
    """A loopback-only network namespace, held open by a sleeping process; yields its pid."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        pytest.skip("needs root with unshare and nsenter (Ray must run on a loopback-only network)")
    holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 3600"])
    time.sleep(0.3)
    if holder.poll() is not None:
        pytest.skip("cannot create a network namespace here")
    yield holder.pid
    holder.kill()
    holder.wait()


def in_ns(netns: int, args: list, **kw) -> subprocess.Popen:
    env = {**os.environ, **kw.pop("env", {})}
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(["nsenter", "-t", str(netns), "-n", *map(str, args)], env=env, text=True, **kw)


def kiwi(netns: int, *args, **kw) -> subprocess.Popen:
    return in_ns(netns, [sys.executable, "-m", "kiwi_cas.cli", "annotate", *args], **kw)


def finish(proc: subprocess.Popen, timeout: float = 420) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


@pytest.fixture(scope="module")
def cluster(netns):
    """A real Ray cluster head (2 CPUs) in the namespace; yields its address.

    Ray clusters require a token by default: head and drivers share RAY_AUTH_TOKEN.
    """
    import secrets
    import tempfile

    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))

    temp = Path(tempfile.mkdtemp(prefix="krc", dir="/tmp"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = Path(sys.executable).parent / "ray"  # the venv's, whether or not it is on PATH
    head_log = temp / "head.log"  # a file, not a pipe: nobody reads the head's output while it runs
    head = in_ns(netns, [ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                         "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
                 start_new_session=True, stdout=head_log.open("w"), stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline and head.poll() is None and f"127.0.0.1]:{port} " not in subprocess.run(
            ["nsenter", "-t", str(netns), "-n", "ss", "-ltn"], capture_output=True, text=True).stdout:
        time.sleep(0.5)
    if head.poll() is not None:
        pytest.fail("ray start --head exited: " + head_log.read_text()[-1500:])
    time.sleep(3)  # the raylet registers after the GCS listens
    probe = in_ns(netns, [sys.executable, "-c", f"import ray; ray.init(address='{address}'); ray.shutdown()"])
    try:
        code = probe.wait(timeout=180)
    except subprocess.TimeoutExpired:
        probe.kill()
        code = -1
    if code != 0:
        os.killpg(head.pid, signal.SIGKILL)
        pytest.fail("the Ray head did not come up: " + probe.stderr.read()[-1000:])
    yield address
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
    _kill_matching(str(temp))
    shutil.rmtree(temp, ignore_errors=True)
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        os.environ.pop(name, None)


def _pids_matching(text: str) -> list[int]:
    """Processes whose command line contains ``text``."""
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


def _kill_matching(text: str) -> None:
    """Kill what a test started and left behind (Ray processes whose command line names its temp dir)."""
    for pid in _pids_matching(text):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def raytmp():
    """Ray's temp dir for a local instance: short (its socket paths must fit 107 bytes), removed after."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="kr", dir="/tmp"))
    yield path
    _kill_matching(str(path))
    shutil.rmtree(path, ignore_errors=True)


def _notes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    sources = sorted((EXAMPLES / "notes").glob("*.txt"))
    for i in range(n):
        text = sources[i % len(sources)].read_text()
        (folder / f"note{i:03d}.txt").write_text(text + f"\nFollow-up visit {i + 1} in {i % 7 + 2} weeks.\n")
    return folder


def _status(outdir: Path) -> list[dict]:
    return pq.read_table(outdir / "kiwi-status.parquet").to_pylist()


def _outputs(outdir: Path) -> dict[str, bytes]:
    return {p.relative_to(outdir).as_posix(): p.read_bytes() for p in sorted(outdir.rglob("*"))
            if p.is_file() and p.suffix in (".xmi", ".json")}


def test_ray_outputs_match_the_local_engine(netns, tmp_path, raytmp):
    corpus = tmp_path / "in"
    _notes(corpus / "notes", 6)
    shutil.copytree(EXAMPLES / "xmi", corpus / "xmi")
    shutil.copytree(XMI / "ctakes-typesystem", corpus / "ctakes")
    local = kiwi(netns, corpus, "-o", tmp_path / "local", "--batch-size", "2")
    code, log = finish(local)
    assert code == 0, log[-2000:]
    remote = kiwi(netns, corpus, "-o", tmp_path / "ray", "--engine", "ray", "--batch-size", "2", "--jobs", "1",
                  env={"RAY_TMPDIR": str(raytmp)})
    code, log = finish(remote)
    assert code == 0, log[-2000:]
    assert "Traceback" not in log
    want, got = _outputs(tmp_path / "local"), _outputs(tmp_path / "ray")
    assert len(want) >= 9 and got.keys() == want.keys()
    for name in want:
        assert got[name] == want[name], name  # byte for byte, hence feature structure for feature structure
    assert (tmp_path / "ray" / "TypeSystem.xml").exists() or (tmp_path / "ray" / "xmi" / "TypeSystem.xml").exists()
    rows = _status(tmp_path / "ray")
    assert len(rows) == len(want) and {r["status"] for r in rows} == {"ok"}
    assert all(r["entities"] > 0 and r["seconds"] > 0 and r["worker"] for r in rows)
    manifest = pq.read_table(tmp_path / "ray" / "kiwi-manifest.parquet").to_pylist()
    assert len(manifest) == len(want) and all(m["size"] > 0 and m["input_key"] for m in manifest)


def test_corrupt_inputs_are_rows_with_their_error_and_no_note_text_is_logged(netns, tmp_path, raytmp):
    corpus = _notes(tmp_path / "in", 19)
    (corpus / "broken.xmi").write_text('<?xml version="1.0"?><xmi:XMI xmlns:xmi="http://www.omg.org/XMI" '
                                       f'xmi:version="2.0"><cas:Sofa sofaString="{MARKER} has chest pain"')
    proc = kiwi(netns, corpus, "-o", tmp_path / "out", "--engine", "ray", "--batch-size", "4",
                env={"RAY_TMPDIR": str(raytmp)})
    code, log = finish(proc)
    assert code == 1, log[-2000:]
    assert "19 ok, 1 failed" in log and "Traceback" not in log
    rows = {Path(r["source"]).name: r for r in _status(tmp_path / "out")}
    assert len(rows) == 20
    assert rows["broken.xmi"]["status"] == "failed" and rows["broken.xmi"]["error_type"]
    assert all(r["status"] == "ok" for n, r in rows.items() if n != "broken.xmi")
    assert len(list((tmp_path / "out").glob("*.xmi"))) == 19
    leaked = [p for p in raytmp.rglob("*") if p.is_file() and p.stat().st_size < 50_000_000
              and MARKER.encode() in p.read_bytes()]
    assert MARKER not in log and not leaked, leaked
    for p in (tmp_path / "out").iterdir():
        if p.suffix in (".parquet", ".jsonl"):
            assert MARKER.encode() not in p.read_bytes(), p


def _actor_pids() -> list[int]:
    return _pids_matching("MapWorker")


def test_a_killed_worker_is_replaced_and_every_file_is_written_once(netns, cluster, tmp_path):
    corpus = _notes(tmp_path / "in", 24)
    out = tmp_path / "out"
    proc = kiwi(netns, corpus, "-o", out, "--engine", "ray", "--address", cluster, "--batch-size", "2")
    deadline = time.time() + 300
    while time.time() < deadline and not (len(list(out.glob("*.xmi"))) >= 2 and _actor_pids()):
        time.sleep(0.1)
    victims = _actor_pids()
    assert victims, "no Ray actor seen"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    code, log = finish(proc)
    assert code == 0, log[-2000:]
    assert sorted(p.name for p in out.glob("*.xmi")) == [f"note{i:03d}.xmi" for i in range(24)]
    assert not list(out.rglob("*.tmp"))
    rows = _status(out)
    assert len(rows) == 24 and len({r["source"] for r in rows}) == 24 and {r["status"] for r in rows} == {"ok"}
    assert not (out / ".kiwi-status").exists()


def test_a_killed_driver_resumes_without_redoing_or_missing_anything(netns, cluster, tmp_path):
    corpus = _notes(tmp_path / "in", 24)
    out = tmp_path / "out"
    proc = kiwi(netns, corpus, "-o", out, "--engine", "ray", "--address", cluster, "--batch-size", "2",
                start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / ".kiwi-status").glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)  # the cluster ends the dead driver's actors
    from kiwi_cas.engines.status_table import read_status

    recorded = {Path(r["output"]).name for r in read_status(out).values() if r["status"] == "ok"}
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.xmi")}
    assert 0 < len(recorded) < 24 and recorded <= set(first)
    resumed = kiwi(netns, corpus, "-o", out, "--engine", "ray", "--address", cluster, "--batch-size", "2",
                   "--resume")
    code, log = finish(resumed)
    assert code == 0, log[-2000:]
    assert f"{len(recorded)} skipped" in log, log[-500:]
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.xmi")}
    assert sorted(after) == [f"note{i:03d}.xmi" for i in range(24)]
    assert all(after[n] == first[n] for n in recorded)  # what the killed run recorded was not processed again
    rows = _status(out)
    assert len(rows) == 24 and {r["status"] for r in rows} == {"ok"}
    assert not list(out.rglob("*.tmp"))


def test_without_ray_installed_one_line_says_what_to_install(tmp_path, monkeypatch):
    from tests.helpers import cli

    monkeypatch.setitem(sys.modules, "ray", None)
    result = cli("annotate", EXAMPLES / "notes", "-o", tmp_path / "out", "--engine", "ray", expect=3)
    assert "pip install 'kiwi_cas[ray]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
