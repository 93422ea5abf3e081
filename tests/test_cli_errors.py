"""Every user error in the CLI ends in one line and a documented exit code, never a traceback."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import REPO
from tests.helpers import cli

NOTE = REPO / "examples" / "notes" / "cardiology_followup.txt"


def _one_error_line(result) -> str:
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("error:") or x.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bad(tmp_path):
    """A folder of bad things: an empty folder, a bad .ann, a broken XMI, a file where a folder should be."""
    (tmp_path / "empty").mkdir()
    brat = tmp_path / "brat"
    brat.mkdir()
    (brat / "n.txt").write_text("Patient denies chest pain.")
    (brat / "n.ann").write_text("T1\tproblem 15 oops\tchest pain\n")
    xmi = tmp_path / "xmi"
    xmi.mkdir()
    (xmi / "broken.xmi").write_text("<xmi:XMI")
    (tmp_path / "a-file").write_text("x")
    bad_meta = tmp_path / "badmeta"
    bad_meta.mkdir()
    (bad_meta / "kiwi_model.json").write_text("{not json")
    return tmp_path


CASES = [
    # (arguments, exit code, words the message must hold)
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--batch-size", "0"], 2, "batch-size"),
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--jobs", "0"], 2, "jobs"),
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--max-bytes", "-1"], 2, "max-bytes"),
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--model", b / "nowhere"], 2, "nowhere"),
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--model", b / "empty"], 3, "not a kiwi_cas BERT model folder"),
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--extractor", "llama", "--precision", "int8"], 2,
     "--precision (extractor llama) must be one of auto, fp32, bf16"),
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--extractor", "llama", "--runtime", "onnx"], 2,
     "--runtime applies to --extractor bert"),
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--backend", "vllm"], 2, "--backend applies to --extractor llama"),
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--encoding", "no-such-codec"], 2, "encoding"),
    (lambda b: ["annotate", NOTE, "-o", b / "o", "--sentence-type", "no.such.Sentence"], 2, "--sentence-type"),
    (lambda b: ["annotate", b / "empty", "-o", b / "o"], 2, "no input files found"),
    (lambda b: ["annotate", NOTE, "-o", b / "a-file"], 2, "a-file"),
    (lambda b: ["annotate", NOTE, "-o", "/proc/kiwi-cannot-write-here"], 5, "cannot use the output folder"),
    (lambda b: ["models", "info", b / "empty"], 3, "not a kiwi_cas model folder"),
    (lambda b: ["models", "info", b / "badmeta"], 3, "not readable JSON"),
    (lambda b: ["evaluate", "--gold", b / "brat", "--pred", b / "brat"], 1, "n.ann"),
    (lambda b: ["import", "--format", "brat", b / "brat", "-o", b / "o"], 1, "n.ann"),
    (lambda b: ["export", "--format", "brat", b / "xmi", "-o", b / "o"], 1, "well-formed"),
    (lambda b: ["train", "bert", "--train", b / "empty", "-o", b / "m"], 2, "no training notes"),
    (lambda b: ["train", "bert", "--train", b / "brat", "-o", b / "m", "--epochs", "0"], 2, "epochs"),
    (lambda b: ["pbj", "--port", str(_closed_port()), "--host", "127.0.0.1", "--reconnect-tries", "2"], 4,
     "cannot connect"),
    (lambda b: ["pbj", "--port", "0"], 2, "port"),
]


@pytest.mark.parametrize("make_args,code,words", CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_bad_input_gives_one_line_and_its_exit_code(bad, make_args, code, words):
    result = cli(*make_args(bad), expect=code)
    assert words in _one_error_line(result)


def test_every_command_has_help_with_an_example():
    from kiwi_cas.cli import main

    def walk(group, prefix):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, prefix + [name])
            else:
                yield prefix + [name]

    for path in walk(main, []):
        text = cli(*path, "--help").stdout
        assert "Example" in text or path[-1] in ("prepare", "info"), path
