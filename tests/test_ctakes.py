"""cTAKES interoperability on the real cTAKES fixture, checked in Apache UIMA Java."""

from __future__ import annotations

import pytest

from kiwi_cas.cas.ctakes import normalise_subject
from tests.conftest import XMI
from tests.helpers import run, type_counts, without_kiwi

SRC = XMI / "ctakesparser-jl" / "mts_sample_note_97_1152.txt.xmi"
TEXTSEM = "org.apache.ctakes.typesystem.type.textsem"


@pytest.mark.parametrize("ts_name", ["TypeSystem-ctakes-4.0.x.xml", "TypeSystem-ctakes-main-2026.xml"])
def test_ctakes_projection_loads_strictly_with_negated_polarity(tmp_path, annotator_with, uima_java, ts_name):
    ts = XMI / "ctakes-typesystem" / ts_name
    summary = run([SRC], tmp_path, annotator_with(ctakes=True), typesystems=(ts,))
    assert summary.failed == 0, summary.failures
    out = tmp_path / SRC.name
    text = SRC.read_text()
    [java] = uima_java.check(tmp_path / "TypeSystem.xml", [out], dump=f"{TEXTSEM}.DiseaseDisorderMention:polarity")
    assert java["ok"], java["error"]
    before = type_counts(SRC, [ts])
    after = type_counts(out, [tmp_path / "TypeSystem.xml"])
    # every cTAKES structure that came in is still there (projection only adds)
    for name, n in before.items():
        assert after[name] >= n, name
    assert after[f"{TEXTSEM}.DiseaseDisorderMention"] > before[f"{TEXTSEM}.DiseaseDisorderMention"]
    polarities = {int(v) for _, _, v in java["dump"]}
    assert polarities == {-1, 1}  # both read back explicitly; -1 for the negated ones ("No fever" etc.)
    assert java["counts"].get("org.apache.ctakes.typesystem.type.relation.RelationArgument", 0) > 0
    del text


def test_rerun_with_ctakes_replaces_the_projection(tmp_path, annotator_with):
    ts = XMI / "ctakes-typesystem" / "TypeSystem-ctakes-4.0.x.xml"
    annotator = annotator_with(ctakes=True)
    run([SRC], tmp_path / "a", annotator, typesystems=(ts,))
    run([tmp_path / "a" / SRC.name], tmp_path / "b", annotator)
    a = type_counts(tmp_path / "a" / SRC.name, [tmp_path / "a" / "TypeSystem.xml"])
    b = type_counts(tmp_path / "b" / SRC.name, [tmp_path / "b" / "TypeSystem.xml"])
    assert a == b


def test_ctakes_mentions_as_entities(tmp_path, annotator_with, uima_java):
    ts = XMI / "ctakes-typesystem" / "TypeSystem-ctakes-4.0.x.xml"
    annotator = annotator_with(task="re", entities_from="ctakes", ctakes=True)
    summary = run([SRC], tmp_path, annotator, typesystems=(ts,))
    assert summary.failed == 0
    out = tmp_path / SRC.name
    before, after = type_counts(SRC, [ts]), type_counts(out, [tmp_path / "TypeSystem.xml"])
    # no new cTAKES mentions: the existing ones got Kiwi modifiers, relations and attributes
    for short in ("DiseaseDisorderMention", "SignSymptomMention", "MedicationMention", "ProcedureMention"):
        assert after[f"{TEXTSEM}.{short}"] == before[f"{TEXTSEM}.{short}"]
    kiwi_entities = sum(v for k, v in after.items() if k.split(".")[-1] in ("Problem", "Drug", "Treatment", "Test")
                        and k.startswith("org.clinicalnlp"))
    assert kiwi_entities == before[f"{TEXTSEM}.DiseaseDisorderMention"] + before[f"{TEXTSEM}.SignSymptomMention"] + \
        before[f"{TEXTSEM}.MedicationMention"] + before[f"{TEXTSEM}.ProcedureMention"] - _dupes(SRC, ts)
    assert after["org.clinicalnlp.kiwi.type.ModifierRelation"] > 0
    [java] = uima_java.check(tmp_path / "TypeSystem.xml", [out], dump=f"{TEXTSEM}.SignSymptomMention:polarity")
    assert java["ok"], java["error"]
    assert -1 in {int(v) for _, _, v in java["dump"]}
    assert without_kiwi(after).keys() >= before.keys()


def _dupes(path, ts) -> int:
    """Mentions sharing span and Kiwi label with another (counted once as an entity)."""
    from kiwi_cas.cas.ctakes import CTAKES_TO_KIWI
    from kiwi_cas.cas.io import load_xmi

    cas = load_xmi(path, (ts,)).cas
    seen, dupes = set(), 0
    for short, label in CTAKES_TO_KIWI.items():
        for m in cas.select(f"{TEXTSEM}.{short}"):
            if m.type.name != f"{TEXTSEM}.{short}":
                continue
            key = (m.begin, m.end, label)
            dupes += key in seen
            seen.add(key)
    return dupes


def test_subject_normalisation():
    assert normalise_subject("his mother") == "family_member"
    assert normalise_subject("patient") == "patient"
    assert normalise_subject("donor's sister") == "donor_family_member"
    assert normalise_subject("the donor") == "donor_other"
    assert normalise_subject("roommate") == "other"
