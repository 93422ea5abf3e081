"""The ownership rule on real cTAKES, DeepPhe, INCEpTION and DKPro files: kiwi_cas only adds, changes
only what it created, and a re-run gives exactly the first run's output."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import XMI
from tests.helpers import run
from tests.xmi_compare import changed_input_structures, orphans, signature

CTAKES_TS = XMI / "ctakes-typesystem" / "TypeSystem-ctakes-4.0.x.xml"
CTAKES = XMI / "ctakesparser-jl" / "mts_sample_note_97_1152.txt.xmi"
TEXTSEM = "org.apache.ctakes.typesystem.type.textsem"


@pytest.fixture(scope="session")
def deepphe(tmp_path_factory):
    """DeepPhe's XMI with its typesystem, which imports cTAKES's by name (resolved beside it)."""
    folder = tmp_path_factory.mktemp("deepphe")
    shutil.copy(XMI / "deepphe" / "doc1.txt.xmi", folder)
    shutil.copy(XMI / "deepphe" / "CancerTypeSystem.xml", folder / "TypeSystem.xml")
    by_name = folder / "org" / "apache" / "ctakes" / "typesystem" / "types"
    by_name.mkdir(parents=True)
    shutil.copy(CTAKES_TS, by_name / "TypeSystem.xml")
    return folder / "doc1.txt.xmi", folder / "TypeSystem.xml"


def _inputs(deepphe):
    return {
        "ctakes": (CTAKES, CTAKES_TS),
        "deepphe": deepphe,
        "inception": (XMI / "inception" / "relation_test.xmi", XMI / "inception" / "TypeSystem.xml"),
        "dkpro-cassis": (XMI / "dkpro-cassis" / "cas_with_smileys.xmi", XMI / "dkpro-cassis" / "TypeSystem.xml"),
    }


MODES = {
    "all": {},
    "ner": {"task": "ner"},
    "all+ctakes": {"ctakes": True},
    "re+ctakes-entities": {"task": "re", "entities_from": "ctakes", "ctakes": True},
}
CTAKES_ONLY = {"all+ctakes", "re+ctakes-entities"}
CASES = [(name, mode) for name in ("ctakes", "deepphe", "inception", "dkpro-cassis") for mode in MODES
         if mode not in CTAKES_ONLY or name in ("ctakes", "deepphe")]


@pytest.mark.parametrize("name,mode", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_inputs_survive_and_a_rerun_changes_nothing(tmp_path, annotator_with, deepphe, uima_java, name, mode):
    src, ts = _inputs(deepphe)[name]
    annotator = annotator_with(**MODES[mode])
    first = run([src], tmp_path / "a", annotator, typesystems=(ts,))
    assert first.ok == 1, first.failures
    out = tmp_path / "a" / src.name
    # every input feature structure, feature value and view membership is unchanged
    assert changed_input_structures(src, out) == []
    assert orphans(src, out) == []
    # run 2 on run 1's output gives run 1's output, structure for structure
    second = run([out], tmp_path / "b", annotator)
    assert second.ok == 1, second.failures
    assert signature(tmp_path / "b" / src.name) == signature(out)
    [java] = uima_java.check(tmp_path / "a" / "TypeSystem.xml", [out])
    assert java["ok"], java["error"]


def test_ctakes_assertions_are_kept_and_mentions_reused(tmp_path, annotator_with):
    from kiwi_cas.cas.io import load_xmi

    for mode in ({"ctakes": True}, {"task": "re", "entities_from": "ctakes", "ctakes": True}):
        out_dir = tmp_path / str(len(mode))
        run([CTAKES], out_dir, annotator_with(**mode), typesystems=(CTAKES_TS,))
        view = load_xmi(out_dir / CTAKES.name).cas
        kiwi = list(view.select("org.clinicalnlp.kiwi.type.ClinicalEntity"))
        assert kiwi and all(e.ctakesTwin is not None for e in kiwi)  # the twin link, in every mode
        spans: dict = {}
        for m in view.select(f"{TEXTSEM}.IdentifiedAnnotation"):
            if m.type.name.endswith("Mention") and "Anatomical" not in m.type.name and "Time" not in m.type.name:
                spans.setdefault((m.type.name, m.begin, m.end), []).append(m)
        dupes = {k: len(v) for k, v in spans.items() if len(v) > 1}
        before = {}
        for m in load_xmi(CTAKES, (CTAKES_TS,)).cas.select(f"{TEXTSEM}.IdentifiedAnnotation"):
            before.setdefault((m.type.name, m.begin, m.end), 0)
            before[(m.type.name, m.begin, m.end)] += 1
        assert all(before.get(k, 0) >= n for k, n in dupes.items()), dupes  # no twin of an existing mention


@pytest.mark.parametrize("choice", ["fill", "overwrite"])
def test_changed_values_are_recorded_and_a_rerun_restores_them(tmp_path, annotator_with, choice):
    from kiwi_cas.cas.io import load_xmi

    changing = annotator_with(task="re", entities_from="ctakes", ctakes=True, ctakes_assertions=choice)
    run([CTAKES], tmp_path / "o", changing, typesystems=(CTAKES_TS,))
    out = tmp_path / "o" / CTAKES.name
    changed = {(line.split()[0], feature) for line in changed_input_structures(CTAKES, out)
               for feature in line.split("[", 1)[1].split("]")[0].replace("'", "").split(", ")}
    cas = load_xmi(out).cas
    records = list(cas.select("org.clinicalnlp.kiwi.type.RunRecord"))
    changes = [c for r in records for c in r.changes.elements]
    # every value overwritten is on record, with its old value
    assert {(str(c.target.xmiID), c.feature) for c in changes} == changed and changed
    assert all(c.feature in ("polarity", "uncertainty", "conditional", "subject", "bodyLocation", "severity",
                             "course", "labValue", "relativeTemporalContext", "medicationStrength",
                             "medicationFrequency", "medicationRoute", "medicationDosage", "medicationForm",
                             "medicationDuration", "referenceRangeNarrative") for c in changes)
    if choice == "fill":  # only features that had no value: cTAKES's own assertions are all set in this file
        assert all(not c.wasSet for c in changes)
    keep = annotator_with(task="re", entities_from="ctakes", ctakes=True)
    run([out], tmp_path / "k", keep)
    assert changed_input_structures(CTAKES, tmp_path / "k" / CTAKES.name) == []
    again = annotator_with(task="re", entities_from="ctakes", ctakes=True, ctakes_assertions=choice)
    run([out], tmp_path / "again", again)
    assert signature(tmp_path / "again" / CTAKES.name) == signature(out)
