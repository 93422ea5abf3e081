"""One document in, one out (kiwi_cas.annotate.job) and the public Python API around it."""

from __future__ import annotations

from cassis import Cas, TypeSystem

import kiwi_cas
from kiwi_cas.annotate.job import Source, annotate_sources
from kiwi_cas.cas.io import load_xmi_bytes
from kiwi_cas.cas.writer import read_kiwi
from tests.conftest import REPO

NOTE = (REPO / "examples" / "notes" / "cardiology_followup.txt").read_bytes()


def _two_views(text: str | None) -> bytes:
    """XMI with an empty typesystem; a "clinical" view holding ``text`` unless it is None."""
    cas = Cas(typesystem=TypeSystem())
    cas.sofa_string = "Administrative header only."
    if text is not None:
        cas.create_view("clinical").sofa_string = text
    return cas.to_xmi().encode("utf-8")


def test_a_failing_document_is_isolated_from_its_batch(annotator_with):
    annotator = annotator_with(view="clinical")
    sources = [Source("a", _two_views("Patient denies chest pain.")), Source("bad", _two_views(None)),
               Source("c", _two_views("Metoprolol 25 mg p.o. b.i.d. for hypertension."))]
    together = annotate_sources(annotator, sources, kiwi_cas.ReadOptions())
    assert [o.ok for o in together] == [True, False, True]
    assert together[1].error[0] == "no_view" and "clinical" in together[1].error[1]
    alone = [annotate_sources(annotator, [s], kiwi_cas.ReadOptions())[0] for s in (sources[0], sources[2])]
    for batched, single in zip((together[0], together[2]), alone):
        assert batched.output == single.output
        assert batched.counts == single.counts and batched.counts.entities > 0


def test_bytes_and_path_give_the_same_output(annotator, tmp_path):
    path = tmp_path / "note.txt"
    path.write_bytes(NOTE)
    from_path = kiwi_cas.annotate_path(annotator, path)
    from_bytes = kiwi_cas.annotate_bytes(annotator, NOTE, text=True)
    assert from_path.ok and from_path.output == from_bytes.output
    ext = read_kiwi(load_xmi_bytes(from_path.output, ()).cas)
    c = from_path.counts
    assert (c.documents, c.entities, c.modifiers, c.relations) == (1, len(ext.entities), len(ext.modifiers),
                                                                  len(ext.relations))


def test_a_bad_document_is_an_outcome_not_an_exception(annotator):
    out = kiwi_cas.annotate_bytes(annotator, b"<xmi:XMI", name="broken")
    assert not out.ok and out.output is None and out.error[0] == "malformed_xml"


def test_a_cassis_cas_is_annotated_in_place(annotator, tmp_path):
    path = tmp_path / "note.txt"
    path.write_bytes(NOTE)
    cas = kiwi_cas.load_cas(path).cas
    assert annotator.process(cas) is cas
    assert read_kiwi(cas).entities


def test_public_api_is_declared():
    for name in kiwi_cas.__all__:
        assert hasattr(kiwi_cas, name), name
