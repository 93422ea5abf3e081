"""cTAKES-shaped files written here for each shape seen in real corpora: subtypes of mention types,
YTEX's EntityMention with a typeID, multi-view CASes with a sofaURI, views without text, and the
errors and names a user meets on the way."""

from __future__ import annotations

import json
import shutil

import pytest
from cassis import Cas

from kiwi_cas.cas.io import load_xmi
from kiwi_cas.cas.typesystem import merged_typesystem
from tests.conftest import XMI
from tests.helpers import cli, run
from tests.xmi_compare import changed_input_structures

CTAKES_TS = XMI / "ctakes-typesystem" / "TypeSystem-ctakes-4.0.x.xml"
TEXTSEM = "org.apache.ctakes.typesystem.type.textsem"
TEXT = "No evidence of pneumonia. ER status negative. Aspirin 81 mg daily. Chest pain, rule out angina."


@pytest.fixture(scope="module")
def deepphe_ts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deepphe-ts")
    shutil.copy(XMI / "deepphe" / "CancerTypeSystem.xml", folder / "TypeSystem.xml")
    by_name = folder / "org" / "apache" / "ctakes" / "typesystem" / "types"
    by_name.mkdir(parents=True)
    shutil.copy(CTAKES_TS, by_name / "TypeSystem.xml")
    return folder / "TypeSystem.xml"


def _mention(cas: Cas, type_name: str, phrase: str, **features):
    start = cas.sofa_string.index(phrase)
    fs = cas.typesystem.get_type(type_name)(begin=start, end=start + len(phrase), **features)
    cas.add(fs)
    return fs


def test_subtypes_and_ytex_entity_mentions_are_entities(tmp_path, annotator_with, deepphe_ts, uima_java):
    cas = Cas(typesystem=merged_typesystem((str(deepphe_ts),)))
    cas.sofa_string = TEXT
    _mention(cas, "org.apache.ctakes.cancer.type.textsem.ReceptorStatus", "ER status", polarity=-1, typeID=3)
    _mention(cas, f"{TEXTSEM}.EntityMention", "pneumonia", typeID=2, polarity=-1)  # YTEX: generic, typed by id
    _mention(cas, f"{TEXTSEM}.EntityMention", "Aspirin", typeID=1, polarity=1)
    _mention(cas, f"{TEXTSEM}.AnatomicalSiteMention", "Chest", typeID=6)  # not an entity
    folder = tmp_path / "in"
    folder.mkdir()
    cas.to_xmi(folder / "shapes.xmi")
    annotator = annotator_with(task="re", entities_from="ctakes", ctakes=True)
    summary = run([folder / "shapes.xmi"], tmp_path / "out", annotator, typesystems=(deepphe_ts,))
    assert summary.ok == 1, summary.failures
    out = load_xmi(tmp_path / "out" / "shapes.xmi", (tmp_path / "out" / "TypeSystem.xml",)).cas
    found = {(TEXT[e.begin:e.end], e.type.name.rsplit(".", 1)[-1])
             for e in out.select("org.clinicalnlp.kiwi.type.ClinicalEntity")}
    assert found == {("ER status", "Problem"), ("pneumonia", "Problem"), ("Aspirin", "Drug")}
    assert changed_input_structures(folder / "shapes.xmi", tmp_path / "out" / "shapes.xmi") == []
    [java] = uima_java.check(tmp_path / "out" / "TypeSystem.xml", [tmp_path / "out" / "shapes.xmi"])
    assert java["ok"], java["error"]


def test_no_usable_mention_warns_naming_the_types_or_fails_when_asked(tmp_path):
    cas = Cas(typesystem=merged_typesystem((str(CTAKES_TS),)))
    cas.sofa_string = TEXT
    _mention(cas, f"{TEXTSEM}.AnatomicalSiteMention", "Chest", typeID=6)
    folder = tmp_path / "in"
    folder.mkdir()
    cas.to_xmi(folder / "none.xmi")
    shutil.copy(CTAKES_TS, folder / "TypeSystem.xml")
    err = cli("annotate", folder, "-o", tmp_path / "out", "--task", "re", "--entities-from", "ctakes").stderr
    assert "warning:" in err and "AnatomicalSiteMention 1" in err and "none.xmi" in err
    err = cli("annotate", folder, "-o", tmp_path / "out2", "--task", "re", "--entities-from", "ctakes",
              "--require-mentions", expect=1).stderr
    assert "failed:" in err and "no_ctakes_mentions" in err


def test_multi_view_cas_keeps_every_sofa_attribute(tmp_path, annotator, uima_java):
    cas = Cas(typesystem=merged_typesystem((str(CTAKES_TS),)))
    cas.sofa_string = TEXT
    cas.sofa_mime = "text/plain"
    _mention(cas, f"{TEXTSEM}.DiseaseDisorderMention", "pneumonia", typeID=2, polarity=-1)
    report = cas.create_view("report")
    report.sofa_uri = "file:///archive/report-0001.pdf"
    report.sofa_mime = "application/pdf"
    gold = cas.create_view("gold")
    gold.sofa_string = "Gold view text."
    folder = tmp_path / "in"
    folder.mkdir()
    from kiwi_cas.cas.io import serialize

    (folder / "views.xmi").write_bytes(serialize(cas, "xmi"))
    shutil.copy(CTAKES_TS, folder / "TypeSystem.xml")
    assert b'sofaURI="file:///archive/report-0001.pdf"' in (folder / "views.xmi").read_bytes()
    summary = run([folder / "views.xmi"], tmp_path / "out", annotator)
    assert summary.ok == 1
    assert changed_input_structures(folder / "views.xmi", tmp_path / "out" / "views.xmi") == []
    out = load_xmi(tmp_path / "out" / "views.xmi").cas
    assert out.get_view("report").sofa_uri == "file:///archive/report-0001.pdf"
    assert {v.sofa.sofaID for v in out.views} == {"_InitialView", "report", "gold"}
    [java] = uima_java.check(tmp_path / "out" / "TypeSystem.xml", [tmp_path / "out" / "views.xmi"])
    assert java["ok"], java["error"]


def test_a_view_without_text_is_skipped_with_a_line_or_fails_when_named(tmp_path):
    cas = Cas(typesystem=merged_typesystem(()))
    cas.sofa_uri = "file:///archive/scan.tiff"
    cas.sofa_mime = "image/tiff"
    folder = tmp_path / "in"
    folder.mkdir()
    from kiwi_cas.cas.io import serialize

    (folder / "scan.xmi").write_bytes(serialize(cas, "xmi"))
    err = cli("annotate", folder, "-o", tmp_path / "out").stderr
    assert "1 ok" in err and "warning:" in err and "scan.xmi" in err and "_InitialView" in err
    assert changed_input_structures(folder / "scan.xmi", tmp_path / "out" / "scan.xmi") == []
    err = cli("annotate", folder, "-o", tmp_path / "out2", "--view", "_InitialView", expect=1).stderr
    assert "view_without_text" in err


def test_options_that_only_work_together_are_checked_together(tmp_path):
    note = tmp_path / "n.txt"
    note.write_text(TEXT)
    for args, words in ((["--entities-from", "ctakes"], "needs --task re"),
                        (["--ctakes-assertions", "fill"], "needs --ctakes"),
                        (["--require-mentions"], "needs --task re --entities-from ctakes")):
        assert words in cli("annotate", note, "-o", tmp_path / "o", *args, expect=2).stderr


def test_errors_name_the_cause(tmp_path):
    # a typesystem missing a supertype: say which type needs which
    ts = tmp_path / "ts" / "TypeSystem.xml"
    ts.parent.mkdir()
    ts.write_text('<?xml version="1.0"?><typeSystemDescription xmlns="http://uima.apache.org/resourceSpecifier">'
                  '<types><typeDescription><name>x.Mention</name><supertypeName>y.Missing</supertypeName>'
                  '</typeDescription></types></typeSystemDescription>')
    note = tmp_path / "ts" / "a.xmi"
    cas = Cas(typesystem=merged_typesystem(()))
    cas.sofa_string = "Chest pain."
    cas.to_xmi(note)
    err = cli("annotate", note, "-o", tmp_path / "o", expect=1).stderr
    assert "x.Mention" in err and "extends y.Missing" in err
    # --lenient names what it dropped
    src = tmp_path / "custom.xmi"
    src.write_text('<?xml version="1.0" encoding="UTF-8"?><xmi:XMI xmlns:xmi="http://www.omg.org/XMI" '
                   'xmlns:cas="http:///uima/cas.ecore" xmlns:custom="http:///my/custom.ecore" xmi:version="2.0">'
                   '<cas:NULL xmi:id="0"/><custom:Thing xmi:id="2" sofa="1" begin="0" end="5"/>'
                   '<custom:Thing xmi:id="3" sofa="1" begin="6" end="10"/>'
                   '<cas:Sofa xmi:id="1" sofaNum="1" sofaID="_InitialView" mimeType="text" '
                   'sofaString="Chest pain denied."/><cas:View sofa="1" members="2 3"/></xmi:XMI>')
    err = cli("annotate", src, "-o", tmp_path / "len", "--lenient").stderr
    assert "dropped 2 structures" in err and "my.custom.Thing 2" in err


def test_ctakes_file_names_are_found_and_kept(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cas = Cas(typesystem=merged_typesystem(()))
    cas.sofa_string = "Patient denies chest pain."
    for name in ("a.xmicas.xml", "b.xmi-cas.xml", "c.xml", "d.xmi"):
        cas.to_xmi(folder / name)
    (folder / "TypeSystem.xml").write_text(merged_typesystem(()).to_xml())  # a .xml that is not a CAS
    (folder / "notes.xml").write_text("<notes><note>not a CAS</note></notes>")
    cli("annotate", folder, "-o", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != "errors.jsonl") == \
        ["TypeSystem.xml", "a.xmicas.xml", "b.xmi-cas.xml", "c.xml", "d.xmi"]
    assert not json.dumps([p.name for p in (tmp_path / "out").iterdir()]).count(".xml.xmi")


def test_line_split_ctakes_sentences_keep_the_negation_with_its_finding(tmp_path, annotator):
    text = "HISTORY: The patient reports no\nfever, chills or night sweats since\nlast week.\n"
    cas = Cas(typesystem=merged_typesystem((str(CTAKES_TS),)))
    cas.sofa_string = text
    sentence = cas.typesystem.get_type("org.apache.ctakes.typesystem.type.textspan.Sentence")
    for line_start, line in ((0, "HISTORY: The patient reports no"), (32, "fever, chills or night sweats since"),
                             (68, "last week.")):
        assert text[line_start:line_start + len(line)] == line
        cas.add(sentence(begin=line_start, end=line_start + len(line)))
    folder = tmp_path / "in"
    folder.mkdir()
    cas.to_xmi(folder / "wrapped.xmi")
    shutil.copy(CTAKES_TS, folder / "TypeSystem.xml")
    assert run([folder / "wrapped.xmi"], tmp_path / "out", annotator).ok == 1
    out = load_xmi(tmp_path / "out" / "wrapped.xmi").cas
    negated = {text[r.entity.begin:r.entity.end] for r in out.select("org.clinicalnlp.kiwi.type.ModifierRelation")
               if r.category == "negation"}
    assert "fever" in negated  # the cue "no" is on the line before its finding
