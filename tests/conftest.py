"""Shared fixtures: the real fixture folder, the embedded model, the Apache UIMA Java checker."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
XMI = FIXTURES / "xmi"
REPO = HERE.parent
SHARED_TRAIN = REPO.parent / "shared" / "data" / "mtsamples" / "train"


@pytest.fixture(scope="session")
def bert_extractor():
    """The embedded BERT model, loaded once for the whole session (extractors hold no per-document state)."""
    from kiwi_cas.extractors.config import BertConfig
    from kiwi_cas.extractors.registry import load_extractor

    return load_extractor(BertConfig())


@pytest.fixture(scope="session")
def annotator(bert_extractor):
    """The default annotator; its config is frozen, so no test can change it for the others."""
    from kiwi_cas.annotate.annotator import AnnotatorConfig, KiwiAnnotator

    return KiwiAnnotator(AnnotatorConfig(), extractor=bert_extractor)


@pytest.fixture(scope="session")
def annotator_with(bert_extractor):
    """``annotator_with(ctakes=True, ...)``: an annotator with those AnnotatorConfig fields, sharing the model."""
    from kiwi_cas.annotate.annotator import AnnotatorConfig, KiwiAnnotator

    def make(**config):
        return KiwiAnnotator(AnnotatorConfig(**config), extractor=bert_extractor)

    return make


def _uima_jar() -> Path | None:
    try:
        out = subprocess.run(["dpkg", "-L", "libuima-core-java"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    jars = [line for line in out.splitlines() if line.endswith("/uimaj-core.jar")]
    return Path(jars[0]) if jars else None


class UimaJava:
    """Runs tests/java/StrictLoad.java (compiled once) on XMI files; returns one dict per file."""

    def __init__(self, jar: Path, classes: Path) -> None:
        self.jar, self.classes = jar, classes

    def check(self, typesystem: Path, files: list[Path], dump: str | None = None) -> list[dict]:
        """``dump="TYPE:FEATURE"`` adds [[begin, end, value], ...] as UIMA Java reads them."""
        props = [f"-Ddump={dump}"] if dump else []
        proc = subprocess.run(["java", *props, "-cp", f"{self.jar}:{self.classes}", "StrictLoad", str(typesystem),
                               *map(str, files)], capture_output=True, text=True, timeout=600)
        lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
        assert len(lines) == len(files), proc.stderr[-2000:]
        return lines


@pytest.fixture(scope="session")
def uima_java(tmp_path_factory) -> UimaJava:
    jar = _uima_jar()
    if jar is None or shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("Apache UIMA Java check skipped: needs Debian packages libuima-core-java and default-jdk-headless")
    classes = tmp_path_factory.mktemp("java")
    subprocess.run(["javac", "-nowarn", "-encoding", "UTF-8", "-cp", str(jar), "-d", str(classes),
                    str(HERE / "java" / "StrictLoad.java")], check=True, capture_output=True)
    return UimaJava(jar, classes)
