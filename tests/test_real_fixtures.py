"""Annotate real XMI written by cTAKES, INCEpTION and DKPro; nothing that came in is lost."""

from __future__ import annotations

import shutil

import pytest
from cassis import load_cas_from_xmi

from kiwi_cas.cas.typesystem import merged_typesystem
from tests.conftest import XMI
from tests.helpers import kiwi_only, run, type_counts, without_kiwi

CASES = [
    # (input file, typesystems, expects clinical content)
    ("ctakesparser-jl/mts_sample_note_97_1152.txt.xmi", ["ctakes-typesystem/TypeSystem-ctakes-4.0.x.xml"], True),
    ("ctakesparser-jl/mts_sample_note_97_1152.txt.xmi", ["ctakes-typesystem/TypeSystem-ctakes-main-2026.xml"], True),
    ("inception/relation_test.xmi", ["inception/TypeSystem.xml"], False),
    ("dkpro-cassis/cas_with_smileys.xmi", ["dkpro-cassis/important_dkpro_types.xml"], False),
    ("dkpro-core/english.xmi", ["dkpro-core/dkpro-core-types.xml", "dkpro-cassis/important_dkpro_types.xml"], False),
]


@pytest.mark.parametrize("name,typesystems,clinical", CASES, ids=lambda x: str(x).split("/")[0][:30])
def test_every_input_structure_survives_and_kiwi_is_added(tmp_path, annotator, uima_java, name, typesystems, clinical):
    src = XMI / name
    ts = [XMI / t for t in typesystems]
    summary = run([src], tmp_path, annotator, typesystems=tuple(ts))
    assert summary.failed == 0, summary.failures
    out = tmp_path / src.name
    before = type_counts(src, ts)
    after = type_counts(out, [tmp_path / "TypeSystem.xml"])
    assert without_kiwi(after) == before
    if clinical:
        kiwi = kiwi_only(after)
        assert kiwi["org.clinicalnlp.kiwi.type.Problem"] >= 5
        assert kiwi["org.clinicalnlp.kiwi.type.ModifierRelation"] >= 1
    # feature values survive too: compare every non-Kiwi FS's features, input vs output
    cas_in = load_cas_from_xmi(src.read_text(encoding="utf-8"), typesystem=merged_typesystem(tuple(map(str, ts))))
    cas_out = load_cas_from_xmi(out.read_text(encoding="utf-8"), typesystem=merged_typesystem(tuple(map(str, ts))))
    assert cas_in.sofa_string == cas_out.sofa_string
    assert _fingerprint(cas_in) == _fingerprint(cas_out)
    # Apache UIMA Java loads the output strictly, with the TypeSystem.xml written beside it
    [java] = uima_java.check(tmp_path / "TypeSystem.xml", [out])
    assert java["ok"], java["error"]
    java_non_kiwi = {k: v for k, v in java["counts"].items() if not k.startswith("org.clinicalnlp.kiwi.type.")
                     and k != "uima.tcas.DocumentAnnotation"}
    assert java_non_kiwi == {k: v for k, v in before.items() if k != "uima.tcas.DocumentAnnotation"}


def _fingerprint(cas) -> list:
    """Every non-Kiwi indexed FS as (type, sorted primitive features), order-independent."""
    out = []
    for view in cas.views:
        for fs in cas.get_view(view.sofa.sofaID).select_all_fs():
            if fs.type.name.startswith("org.clinicalnlp.kiwi.type."):
                continue
            feats = []
            for f in fs.type.all_features:
                if f.name in ("sofa",):
                    continue
                v = fs.get(f.name)
                feats.append((f.name, v if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__))
            out.append((fs.type.name, tuple(feats)))
    return sorted(out, key=repr)


def test_emoji_offsets_are_right_outside_the_bmp(tmp_path, annotator, uima_java):
    note = tmp_path / "in" / "emoji.txt"
    note.parent.mkdir()
    text = "😀😀 Patient denies chest pain. 😀 She has severe headache and takes aspirin 81 mg daily."
    note.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    assert run([note], out, annotator).ok == 1
    cas = load_cas_from_xmi((out / "emoji.xmi").read_text(encoding="utf-8"),
                            typesystem=merged_typesystem(()))
    found = {(a.get_covered_text(), a.type.name.rsplit(".", 1)[1]) for a in cas.select("org.clinicalnlp.kiwi.type.ClinicalEntity")}
    assert ("chest pain", "Problem") in found
    for a in cas.select("org.clinicalnlp.kiwi.type.ClinicalEntity"):
        assert text[a.begin:a.end] == a.get_covered_text()
    [java] = uima_java.check(out / "TypeSystem.xml", [out / "emoji.xmi"])
    assert java["ok"], java["error"]


def test_rerun_on_own_output_replaces_never_duplicates(tmp_path, annotator):
    src = XMI / "ctakesparser-jl" / "mts_sample_note_97_1152.txt.xmi"
    ts = XMI / "ctakes-typesystem" / "TypeSystem-ctakes-4.0.x.xml"
    run([src], tmp_path / "a", annotator, typesystems=(ts,))
    first = type_counts(tmp_path / "a" / src.name, [tmp_path / "a" / "TypeSystem.xml"])
    run([tmp_path / "a" / src.name], tmp_path / "b", annotator)
    second = type_counts(tmp_path / "b" / src.name, [tmp_path / "b" / "TypeSystem.xml"])
    assert second == first
    assert _kiwi_keys(tmp_path / "a" / src.name) == _kiwi_keys(tmp_path / "b" / src.name)


def _kiwi_keys(path):
    from kiwi_cas.cas.io import load_xmi
    from kiwi_cas.cas.writer import read_kiwi

    ext = read_kiwi(load_xmi(path).cas)
    return ({s.key() for s in ext.entities}, {s.key() for s in ext.modifiers},
            {(r.entity.key(), r.modifier.key()) for r in ext.relations})


def test_typesystem_beside_input_is_found(tmp_path, annotator):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(XMI / "inception" / "relation_test.xmi", folder)
    shutil.copy(XMI / "inception" / "TypeSystem.xml", folder)
    summary = run([folder], tmp_path / "out", annotator)
    assert summary.ok == 1 and summary.failed == 0
