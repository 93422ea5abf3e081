"""`pip install` of the built wheel into a fresh virtual environment, with nothing else, annotates offline
with the embedded model (it ships as ONNX: no torch, no transformers, no base-model package)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import io

import pytest

from tests.conftest import REPO


def test_the_wheel_installs_alone_and_annotates(tmp_path):
    tracked = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    src = tmp_path / "src"
    archive = tarfile.open(fileobj=io.BytesIO(tracked.stdout))
    # our own `git archive`; the "data" filter exists from Python 3.11.4 (Debian 12 ships 3.11.2)
    archive.extractall(src, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                            str(src)], capture_output=True, text=True, timeout=900)
    assert wheel.returncode == 0, wheel.stderr[-2000:]
    [whl] = (tmp_path / "dist").glob("kiwi_cas-*.whl")
    assert whl.stat().st_size < 100 * 1024 * 1024
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    pip = tmp_path / "venv" / "bin" / "pip"
    install = subprocess.run([str(pip), "install", "-q", str(whl)], capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([str(pip), "list"], capture_output=True, text=True).stdout.lower()
    assert "torch" not in listed and "transformers" not in listed
    cli = tmp_path / "venv" / "bin" / "kiwi-cas"
    run = subprocess.run([str(cli), "annotate", str(REPO / "examples"), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "6 ok, 0 failed" in run.stderr and "Traceback" not in run.stderr
    # the same outputs as the development install
    dev = subprocess.run([sys.executable, "-m", "kiwi_cas.cli", "annotate", str(REPO / "examples"), "-o",
                          str(tmp_path / "dev")], capture_output=True, text=True, timeout=600)
    assert dev.returncode == 0
    for out in sorted((tmp_path / "dev").rglob("*.xmi")):
        assert out.read_bytes() == (tmp_path / "out" / out.relative_to(tmp_path / "dev")).read_bytes(), out.name
    # an optional part that is missing says what to install, in one line
    llama = subprocess.run([str(cli), "annotate", str(REPO / "examples" / "notes"), "-o", str(tmp_path / "l"),
                            "--extractor", "llama"], capture_output=True, text=True, timeout=600)
    assert llama.returncode == 3 and "pip install 'kiwi_cas[train]'" in llama.stderr
    assert "Traceback" not in llama.stderr
