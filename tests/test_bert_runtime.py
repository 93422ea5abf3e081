"""The default BERT runtime (ONNX Runtime, fp32): same note, same answer; a quiet run."""

from __future__ import annotations

import shutil

import pytest

from kiwi_cas.cas.io import load_xmi
from kiwi_cas.cas.writer import read_kiwi
from tests.conftest import REPO, SHARED_TRAIN
from tests.helpers import noise_of_annotate, run


def _kiwi(path):
    ext = read_kiwi(load_xmi(path).cas)
    return ({s.key() for s in ext.entities}, {s.key() for s in ext.modifiers},
            {(r.entity.key(), r.modifier.key()) for r in ext.relations})


def test_a_notes_annotations_do_not_depend_on_its_batch(tmp_path, annotator):
    sources = sorted((REPO / "examples" / "notes").glob("*.txt"))
    if SHARED_TRAIN.exists():
        sources += sorted(SHARED_TRAIN.glob("*.txt"))[:47]
    folder, reverse = tmp_path / "all", tmp_path / "reverse"
    folder.mkdir()
    reverse.mkdir()
    n = 50
    for i in range(n):
        src = sources[i % len(sources)]
        shutil.copy(src, folder / f"n{i:02d}.txt")
        shutil.copy(src, reverse / f"n{n - 1 - i:02d}.txt")  # the same notes, the other way round
    probe = ["n00", "n07", "n25"]
    alone = {}
    for name in probe:
        run([folder / f"{name}.txt"], tmp_path / f"alone-{name}", annotator, batch_size=1)
        alone[name] = _kiwi(tmp_path / f"alone-{name}" / f"{name}.xmi")
    for batch_size in (1, 8, 32):
        out = tmp_path / f"b{batch_size}"
        assert run([folder], out, annotator, batch_size=batch_size).ok == n
        for name in probe:
            assert _kiwi(out / f"{name}.xmi") == alone[name], (name, batch_size)
    out = tmp_path / "rev"
    run([reverse], out, annotator, batch_size=8)
    for name in probe:
        assert _kiwi(out / f"n{n - 1 - int(name[1:]):02d}.xmi") == alone[name]


def test_a_default_run_prints_no_warnings(tmp_path):
    assert noise_of_annotate(REPO / "examples", "-o", tmp_path) == []


def test_openvino_runs_the_same_graphs_to_the_same_annotations(tmp_path, annotator):
    """`--runtime openvino` reads the ONNX runtime's graphs in fp32: the same annotations, note by note,
    alone or batched (the README's runtime table compares their speed)."""
    pytest.importorskip("openvino")
    from kiwi_cas.annotate.annotator import AnnotatorConfig
    from kiwi_cas.extractors.config import BertConfig

    sources = sorted((REPO / "examples" / "notes").glob("*.txt"))
    if SHARED_TRAIN.exists():
        sources += sorted(SHARED_TRAIN.glob("*.txt"))[:10]
    folder = tmp_path / "notes"
    folder.mkdir()
    for src in sources:
        shutil.copy(src, folder / src.name)
    assert run([folder], tmp_path / "onnx", annotator, batch_size=8).ok == len(sources)
    openvino = AnnotatorConfig(extractor=BertConfig(runtime="openvino"))
    for batch_size in (1, 8):
        out = tmp_path / f"openvino-{batch_size}"
        assert run([folder], out, config=openvino, batch_size=batch_size).ok == len(sources)
        for src in sources:
            name = src.with_suffix(".xmi").name
            assert _kiwi(out / name) == _kiwi(tmp_path / "onnx" / name), (name, batch_size)
