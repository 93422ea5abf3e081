"""MedCAT-shaped and JSON CAS exports of annotated XMI."""

from __future__ import annotations

import json

from cassis import load_cas_from_json

from tests.helpers import cli, run

TEXT = "Patient denies chest pain. His mother had breast cancer. Aspirin 81 mg daily."


def _annotated(tmp_path, annotator):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "n1.txt").write_text(TEXT)
    run([tmp_path / "in"], tmp_path / "xmi", annotator)
    return tmp_path / "xmi"


def _export(src, fmt, out):
    cli("export", "--format", fmt, src, "-o", out)


def test_medcat_shape_and_meta_annotations(tmp_path, annotator):
    xmi = _annotated(tmp_path, annotator)
    _export(xmi, "medcat", tmp_path / "mc")
    doc = json.loads((tmp_path / "mc" / "n1.json").read_text())
    ents = list(doc["entities"].values())
    assert ents and set(ents[0]) >= {"pretty_name", "cui", "type_ids", "source_value", "start", "end", "acc", "id",
                                    "meta_anns"}
    for e in ents:
        assert TEXT[e["start"]:e["end"]] == e["source_value"]
    pain = next(e for e in ents if e["source_value"] == "chest pain")
    assert pain["meta_anns"]["Presence"]["value"] == "False"
    assert pain["meta_anns"]["Subject/Experiencer"] == {"value": "Patient", "name": "Subject/Experiencer",
                                                        "confidence": pain["meta_anns"]["Subject/Experiencer"]["confidence"]}


def test_medcattrainer_export_links_relations(tmp_path, annotator):
    xmi = _annotated(tmp_path, annotator)
    _export(xmi, "medcattrainer", tmp_path / "mct")
    data = json.loads((tmp_path / "mct" / "medcattrainer_export.json").read_text())
    doc = data["projects"][0]["documents"][0]
    ids = {a["id"]: a for a in doc["annotations"]}
    assert doc["relations"]
    for r in doc["relations"]:
        assert ids[r["start_entity"]]["start"] == r["start_entity_start_idx"]
        assert ids[r["end_entity"]]["value"] == r["end_entity_value"]
    # MedCAT's trainers read meta_anns as a dict keyed by task, and take the task names from the first annotation
    first = doc["annotations"][0]
    assert first["cui"] in {"kiwi:problem", "kiwi:test", "kiwi:drug", "kiwi:treatment"}
    assert set(first["meta_anns"]) >= {"Presence", "Subject/Experiencer"}
    assert all(isinstance(a["meta_anns"], dict) for a in doc["annotations"])
    kinds = [a["cui"] in {"kiwi:problem", "kiwi:test", "kiwi:drug", "kiwi:treatment"} for a in doc["annotations"]]
    assert kinds == sorted(kinds, reverse=True)  # entities, then modifiers
    assert not any(a["validated"] for a in doc["annotations"]) and not any(r["validated"] for r in doc["relations"])
    cli("export", "--format", "medcattrainer", "--validated", xmi, "-o", tmp_path / "v")
    data = json.loads((tmp_path / "v" / "medcattrainer_export.json").read_text())
    doc = data["projects"][0]["documents"][0]
    assert all(a["validated"] for a in doc["annotations"]) and all(r["validated"] for r in doc["relations"])
    assert all(m["validated"] for a in doc["annotations"] for m in a["meta_anns"].values())


def test_jsoncas_export_round_trips_text(tmp_path, annotator):
    xmi = _annotated(tmp_path, annotator)
    _export(xmi, "jsoncas", tmp_path / "js")
    cas = load_cas_from_json((tmp_path / "js" / "n1.json").read_text())
    assert cas.sofa_string == TEXT
    assert len(cas.select("org.clinicalnlp.kiwi.type.ClinicalEntity")) >= 2
