"""Flat tables (``kiwi-cas export --format parquet|csv``): what pandas reads matches the XMI."""

from __future__ import annotations

import pytest

from kiwi_cas.cas.io import load_xmi
from kiwi_cas.cas.writer import read_kiwi
from tests.conftest import REPO
from tests.helpers import cli

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    out = tmp_path_factory.mktemp("annotated")
    cli("annotate", REPO / "examples" / "xmi", "-o", out)
    return out


def _truth(folder):
    return {p.stem: (load_xmi(p).cas.sofa_string, read_kiwi(load_xmi(p).cas)) for p in sorted(folder.glob("*.xmi"))}


def test_parquet_tables_match_the_xmi(annotated, tmp_path):
    cli("export", "--format", "parquet", annotated, "-o", tmp_path)
    ents = pd.read_parquet(tmp_path / "entities.parquet")
    rels = pd.read_parquet(tmp_path / "relations.parquet")
    truth = _truth(annotated)
    assert "text" not in ents.columns and "entity_text" not in rels.columns  # PHI only on request
    for name, (text, ext) in truth.items():
        e, r = ents[ents.document == name], rels[rels.document == name]
        assert sorted(zip(e.begin, e.end, e.type)) == sorted((s.start, s.end, s.label) for s in ext.entities)
        assert sorted(zip(r.entity_begin, r.entity_end, r.modifier_type, r.modifier_begin, r.modifier_end)) == sorted(
            (x.entity.start, x.entity.end, x.modifier.label, x.modifier.start, x.modifier.end) for x in ext.relations)
        negated = {(x.entity.start, x.entity.end) for x in ext.relations if x.modifier.label == "negation"}
        assert {(b, en) for b, en, n in zip(e.begin, e.end, e.negated) if n} == negated
        # the modifier columns hold the same links as the relations table
        linked = sum(len(v) for col in ents.columns if col.startswith("mod_") for v in e[col])
        assert linked == len(r)
        some = max(ext.entities, key=lambda s: s.end - s.start)
        assert text[some.start:some.end].encode() not in (tmp_path / "entities.parquet").read_bytes()
    assert len(ents) == sum(len(ext.entities) for _, ext in truth.values()) > 20


def test_csv_and_with_text(annotated, tmp_path):
    cli("export", "--format", "csv", "--with-text", annotated, "-o", tmp_path)
    ents = pd.read_csv(tmp_path / "entities.csv")
    rels = pd.read_csv(tmp_path / "relations.csv")
    truth = _truth(annotated)
    for _, row in ents.iterrows():
        text, _ = truth[row.document]
        assert row.text == text[row.begin:row.end]
    assert len(rels) == sum(len(ext.relations) for _, ext in truth.values())
    result = cli("export", "--format", "brat", "--with-text", annotated, "-o", tmp_path / "b", expect=2)
    assert "--with-text" in result.stderr
