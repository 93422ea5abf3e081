"""Typesystem handling: imports flattened (cassis ignores them), merging, views."""

from __future__ import annotations

from cassis import Cas, TypeSystem

from kiwi_cas.cas.typesystem import merged_typesystem
from tests.helpers import run, type_counts

BASE = """<?xml version="1.0" encoding="UTF-8"?>
<typeSystemDescription xmlns="http://uima.apache.org/resourceSpecifier"><types>
  <typeDescription><name>org.example.Base</name><supertypeName>uima.tcas.Annotation</supertypeName>
    <features><featureDescription><name>code</name><rangeTypeName>uima.cas.String</rangeTypeName></featureDescription></features>
  </typeDescription></types></typeSystemDescription>"""

CHILD = """<?xml version="1.0" encoding="UTF-8"?>
<typeSystemDescription xmlns="http://uima.apache.org/resourceSpecifier">
  <imports><import location="base/Base.xml"/><import name="org.example.Named"/></imports>
  <types><typeDescription><name>org.example.Child</name><supertypeName>org.example.Base</supertypeName></typeDescription></types>
</typeSystemDescription>"""

NAMED = """<?xml version="1.0" encoding="UTF-8"?>
<typeSystemDescription xmlns="http://uima.apache.org/resourceSpecifier"><types>
  <typeDescription><name>org.example.Named</name><supertypeName>uima.tcas.Annotation</supertypeName></typeDescription>
</types></typeSystemDescription>"""


def test_imports_by_location_and_name_are_flattened(tmp_path, annotator):
    folder = tmp_path / "in"
    (folder / "base").mkdir(parents=True)
    (folder / "org" / "example").mkdir(parents=True)
    (folder / "base" / "Base.xml").write_text(BASE)
    (folder / "org" / "example" / "Named.xml").write_text(NAMED)
    (folder / "TypeSystem.xml").write_text(CHILD)
    ts = merged_typesystem((str(folder / "TypeSystem.xml"),))
    cas = Cas(typesystem=ts)
    cas.sofa_string = "Patient denies chest pain."
    cas.add(ts.get_type("org.example.Child")(begin=0, end=7, code="X1"))
    cas.add(ts.get_type("org.example.Named")(begin=8, end=14))
    cas.to_xmi(folder / "note.xmi")
    summary = run([folder / "note.xmi"], tmp_path / "out", annotator)
    assert summary.ok == 1, summary.failures
    counts = type_counts(tmp_path / "out" / "note.xmi", [tmp_path / "out" / "TypeSystem.xml"])
    assert counts["org.example.Child"] == 1 and counts["org.example.Named"] == 1
    assert counts["org.clinicalnlp.kiwi.type.Problem"] >= 1


def test_other_view_is_annotated_when_asked(tmp_path, annotator_with):
    ts = merged_typesystem(())
    cas = Cas(typesystem=ts)
    cas.sofa_string = "Administrative header only."
    notes = cas.create_view("clinical")
    notes.sofa_string = "The patient denies chest pain and fever."
    (tmp_path / "in").mkdir()
    cas.to_xmi(tmp_path / "in" / "two_views.xmi")
    (tmp_path / "in" / "TypeSystem.xml").write_text(TypeSystem().to_xml())
    summary = run([tmp_path / "in" / "two_views.xmi"], tmp_path / "out", annotator_with(view="clinical"))
    assert summary.ok == 1
    from kiwi_cas.cas.io import load_xmi

    out = load_xmi(tmp_path / "out" / "two_views.xmi").cas
    assert len(out.get_view("clinical").select("org.clinicalnlp.kiwi.type.Problem")) >= 1
    assert len(out.get_view("_InitialView").select("org.clinicalnlp.kiwi.type.Problem")) == 0
