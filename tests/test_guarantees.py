"""The guarantees of the README's "Guarantees" section that concern documents: inputs UIMA Java
rejects are rejected, no note text in any error, empty notes annotate to empty outputs."""

from __future__ import annotations

import json

import pytest
from cassis import Cas

from kiwi_cas.cas.typesystem import merged_typesystem
from tests.helpers import cli

SECRET = "Quorndorf Xanthippe hematocrit"  # note text that must never reach an error message


def _xmi(sofa: str, body: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><xmi:XMI xmlns:xmi="http://www.omg.org/XMI" '
            'xmlns:cas="http:///uima/cas.ecore" xmlns:tcas="http:///uima/tcas.ecore" '
            'xmlns:type="http:///org/clinicalnlp/kiwi/type.ecore" xmi:version="2.0"><cas:NULL xmi:id="0"/>'
            f'<cas:Sofa xmi:id="1" sofaNum="1" sofaID="_InitialView" mimeType="text" sofaString="{sofa}"/>'
            f'{body}</xmi:XMI>')


TEXT = f"His {SECRET} is 41."
INVALID = {  # what UIMA Java's strict deserializer rejects
    "duplicate_id": _xmi(TEXT, '<type:Problem xmi:id="5" sofa="1" begin="0" end="3"/>'
                               '<type:Problem xmi:id="5" sofa="1" begin="4" end="13"/><cas:View sofa="1" members="5"/>'),
    "dangling_reference": _xmi(TEXT, '<type:ModifierRelation xmi:id="7" entity="99" modifier="98"/>'
                                     '<cas:View sofa="1" members="7"/>'),
    "integer_out_of_range": _xmi(TEXT, '<type:Problem xmi:id="5" sofa="1" begin="0" end="99999999999"/>'
                                       '<cas:View sofa="1" members="5"/>'),
    "offsets_out_of_range": _xmi(TEXT, '<type:Problem xmi:id="5" sofa="1" begin="3" end="500"/>'
                                       '<cas:View sofa="1" members="5"/>'),
    "negative_offset": _xmi(TEXT, '<type:Problem xmi:id="5" sofa="1" begin="-4" end="3"/>'
                                  '<cas:View sofa="1" members="5"/>'),
}
HOSTILE = {  # each quotes the note in a library's own message
    "tag_mismatch.xmi": f"<xmi:XMI><Xanthippe>{SECRET}</Quorndorf></xmi:XMI>",
    "entity.xmi": f"<a>{SECRET} &Quorndorf;</a>",
    "not_int.xmi": _xmi(TEXT, f'<type:Problem xmi:id="5" sofa="1" begin="{SECRET}" end="3"/>'
                              '<cas:View sofa="1" members="5"/>'),
    "truncated.xmi": _xmi(TEXT, "")[:260],
    "doctype.xmi": f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY Quorndorf "{SECRET}">]><x>&Quorndorf;</x>',
    "formfeed.txt": f"{SECRET}\f page two",
    "latin1.txt": f"{SECRET} caf\xe9",
    "bad_float.xmi": _xmi(TEXT, f'<type:Problem xmi:id="5" sofa="1" begin="0" end="3" confidence="{SECRET}"/>'
                                '<cas:View sofa="1" members="5"/>'),
}


@pytest.fixture
def kiwi_ts(tmp_path):
    path = tmp_path / "ts" / "TypeSystem.xml"
    path.parent.mkdir()
    path.write_text(merged_typesystem(()).to_xml())
    return path


@pytest.mark.parametrize("cause", sorted(INVALID))
def test_invalid_cases_are_rejected_like_uima_java(tmp_path, kiwi_ts, uima_java, cause):
    src = kiwi_ts.parent / f"{cause}.xmi"
    src.write_text(INVALID[cause])
    [java] = uima_java.check(kiwi_ts, [src])
    # UIMA Java refuses it (a duplicate xmi:id it reads silently, keeping one of the two: data lost) ...
    assert not java["ok"] or cause == "duplicate_id"
    err = cli("annotate", src, "-o", tmp_path / "out", expect=1).stderr
    assert cause.replace("negative_offset", "offsets_out_of_range") in err  # ... and so does kiwi_cas, by name
    assert SECRET.split()[0] not in err
    assert not (tmp_path / "out" / f"{cause}.xmi").exists()


def test_no_note_text_in_any_error(tmp_path, kiwi_ts):
    folder = kiwi_ts.parent
    for name, content in HOSTILE.items():
        (folder / name).write_bytes(content.encode("latin-1" if name == "latin1.txt" else "utf-8"))
    result = cli("annotate", folder, "-o", tmp_path / "out", expect=1)
    errors = [json.loads(x) for x in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == len(HOSTILE)
    for word in SECRET.split():
        assert word not in result.stderr and word not in result.stdout
        assert all(word not in e["message"] and word not in e["error_type"] for e in errors), errors


@pytest.mark.parametrize("texts", [[""], ["   \n\t "], ["", "Patient denies chest pain.", " \n"]])
def test_empty_and_blank_notes_annotate_to_empty_outputs(tmp_path, texts):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, text in enumerate(texts):
        (folder / f"n{i}.txt").write_text(text)
    err = cli("annotate", folder, "-o", tmp_path / "out").stderr
    assert f"{len(texts)} ok, 0 failed" in err
    from kiwi_cas.cas.io import load_xmi
    from kiwi_cas.cas.writer import read_kiwi

    for i, text in enumerate(texts):
        ext = read_kiwi(load_xmi(tmp_path / "out" / f"n{i}.xmi").cas)
        assert bool(ext.entities) == bool(text.strip())


def test_a_cassis_cas_round_trips_without_validation_errors(tmp_path, kiwi_ts):
    cas = Cas(typesystem=merged_typesystem(()))
    cas.sofa_string = "Chest pain 😀 denied."
    cas.add(cas.typesystem.get_type("org.clinicalnlp.kiwi.type.Problem")(begin=0, end=10))
    cas.to_xmi(kiwi_ts.parent / "ok.xmi")
    cli("annotate", kiwi_ts.parent / "ok.xmi", "-o", tmp_path / "out")
