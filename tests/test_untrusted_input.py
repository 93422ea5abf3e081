"""Hostile and broken inputs: each is refused for that file with a clear reason; the run goes on."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import XMI
from tests.helpers import run

SECRET = "TOP-SECRET-e3b0c442"

GOOD = XMI / "inception" / "relation_test.xmi"
GOOD_TS = XMI / "inception" / "TypeSystem.xml"


def _xmi_with_prolog(prolog: str, body_text: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
{prolog}
<xmi:XMI xmlns:xmi="http://www.omg.org/XMI" xmlns:cas="http:///uima/cas.ecore" xmi:version="2.0">
<cas:NULL xmi:id="0"/>
<cas:Sofa xmi:id="1" sofaNum="1" sofaID="_InitialView" mimeType="text" sofaString="{body_text}"/>
<cas:View sofa="1" members=""/>
</xmi:XMI>
"""


ATTACKS = {
    "xxe_file": _xmi_with_prolog('<!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>', "pain &e;"),
    "xxe_parameter": _xmi_with_prolog(
        '<!DOCTYPE x [<!ENTITY % p SYSTEM "file://{secret}"> <!ENTITY % d "<!ENTITY e \'%p;\'>"> %d;]>', "pain &e;"),
    "billion_laughs": _xmi_with_prolog(
        "<!DOCTYPE x [<!ENTITY a \"lol\">" + "".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)) + "]>", "&j;"),
    "quadratic_blowup": _xmi_with_prolog('<!DOCTYPE x [<!ENTITY a "' + "A" * 50000 + '">]>', "&a;" * 5000),
    "xxe_network": _xmi_with_prolog('<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:9/leak">]>', "&e;"),
}


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    for name, payload in ATTACKS.items():
        (folder / f"{name}.xmi").write_text(payload.replace("{secret}", str(secret)), encoding="utf-8")
    shutil.copy(GOOD, folder / "good.xmi")
    shutil.copy(GOOD_TS, folder / "TypeSystem.xml")
    return folder


def test_attacks_are_refused_per_file_and_nothing_leaks(tmp_path, corpus, annotator):
    out = tmp_path / "out"
    summary = run([corpus], out, annotator)
    assert summary.ok == 1 and summary.failed == len(ATTACKS)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {e["error_type"] for e in errors} == {"unsafe_xml"}
    assert {e["file"].rsplit("/", 1)[1] for e in errors} == {f"{n}.xmi" for n in ATTACKS}
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace")
    assert sorted(p.name for p in out.iterdir()) == ["TypeSystem.xml", "errors.jsonl", "good.xmi"]


def test_broken_inputs_fail_cleanly(tmp_path, annotator):
    folder = tmp_path / "in"
    folder.mkdir()
    good = GOOD.read_bytes()
    (folder / "truncated.xmi").write_bytes(good[: len(good) // 2])
    (folder / "empty.xmi").write_bytes(b"")
    (folder / "junk.xmi").write_bytes(bytes(range(256)) * 40)
    (folder / "latin1.txt").write_bytes("Patient has caf\xe9 intolerance.".encode("latin-1"))
    (folder / "emptysofa.txt").write_text("")
    (folder / "not_xmi.xmi").write_text("<html><body>hello</body></html>")
    shutil.copy(GOOD_TS, folder / "TypeSystem.xml")
    shutil.copy(GOOD, folder / "good.xmi")
    out = tmp_path / "out"
    summary = run([folder], out, annotator)
    errors = {json.loads(line)["file"].rsplit("/", 1)[1]: json.loads(line)
              for line in (out / "errors.jsonl").read_text().splitlines()}
    assert set(errors) == {"truncated.xmi", "empty.xmi", "junk.xmi", "latin1.txt", "not_xmi.xmi"}
    assert errors["empty.xmi"]["error_type"] == "empty_file"
    assert errors["latin1.txt"]["error_type"] == "encoding"
    assert errors["truncated.xmi"]["error_type"] == "malformed_xml"
    assert errors["not_xmi.xmi"]["error_type"] == "not_xmi"
    assert summary.ok == 2  # good.xmi and the empty note (a valid CAS with no text)
    assert (out / "emptysofa.xmi").exists() and (out / "good.xmi").exists()


def test_missing_type_fails_by_default_and_lenient_counts_drops(tmp_path, annotator):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(GOOD, folder / "good.xmi")
    lacking = tmp_path / "lacking.xml"  # the INCEpTION typesystem without its webanno.custom.* layer
    lacking.write_text("\n".join(line for line in _strip_custom(GOOD_TS.read_text()).splitlines()))
    summary = run([folder], tmp_path / "strict", annotator, typesystems=(lacking,))
    assert summary.failed == 1
    err = json.loads((tmp_path / "strict" / "errors.jsonl").read_text())
    assert err["error_type"] == "unknown_type" and "webanno.custom.MyRelationLayer" in err["message"]
    summary = run([folder], tmp_path / "lenient", annotator, typesystems=(lacking,), lenient=True)
    assert summary.ok == 1 and summary.counts.dropped == 5


def test_form_feed_needs_an_explicit_choice(tmp_path, annotator):
    from cassis import load_cas_from_json

    folder = tmp_path / "in"
    folder.mkdir()
    text = "HISTORY: Chest pain.\fPAGE 2\nPatient denies fever."
    (folder / "ff.txt").write_text(text)
    summary = run([folder], tmp_path / "xmi", annotator)
    err = json.loads((tmp_path / "xmi" / "errors.jsonl").read_text())
    assert summary.failed == 1 and err["error_type"] == "xml_invalid_chars" and "U+000C" in err["message"]
    assert "Chest" not in err["message"]
    summary = run([folder], tmp_path / "json", annotator, output_format="jsoncas")
    assert summary.ok == 1
    cas = load_cas_from_json((tmp_path / "json" / "ff.json").read_text())
    assert cas.sofa_string == text
    summary = run([folder], tmp_path / "sub", annotator, replace_invalid_xml_chars=True)
    assert summary.ok == 1


def test_one_megabyte_note(tmp_path, annotator):
    folder = tmp_path / "in"
    folder.mkdir()
    para = "The patient denies chest pain. Blood pressure 120/80. Started metoprolol 25 mg daily.\n"
    (folder / "big.txt").write_text(para * (1_000_000 // len(para) + 1))
    summary = run([folder], tmp_path / "out", annotator)
    assert summary.ok == 1 and summary.counts.entities > 10000


def _strip_custom(xml: str) -> str:
    from lxml import etree

    root = etree.fromstring(xml.encode())
    ns = {"u": "http://uima.apache.org/resourceSpecifier"}
    for t in root.findall(".//u:typeDescription", ns):
        if t.findtext("u:name", namespaces=ns).startswith("webanno.custom."):
            t.getparent().remove(t)
    return etree.tostring(root, encoding="unicode")


def test_unknown_feature_is_named(tmp_path, annotator):
    folder = tmp_path / "in"
    folder.mkdir()
    import re

    (folder / "f.xmi").write_text(re.sub(r"(<type\d+:Token )", r'\1madeUpFeature="x" ', GOOD.read_text(), count=1))
    shutil.copy(GOOD_TS, folder / "TypeSystem.xml")
    summary = run([folder], tmp_path / "out", annotator, lenient=True)
    err = json.loads((tmp_path / "out" / "errors.jsonl").read_text())
    assert summary.failed == 1 and err["error_type"] == "unknown_feature" and "madeUpFeature" in err["message"]


@pytest.mark.parametrize("encoding", ["utf-7", "utf-32", "utf-32-be", "utf-16-le", "latin-1"])
def test_doctype_is_refused_in_every_encoding(tmp_path, encoding):
    from kiwi_cas.cas.io import load_xmi_bytes
    from kiwi_cas.errors import UnsafeXmlError

    doc = (f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE x [<!ENTITY e "boom">]>'
           '<xmi:XMI xmlns:xmi="http://www.omg.org/XMI">&e;</xmi:XMI>')
    with pytest.raises(UnsafeXmlError):
        load_xmi_bytes(doc.encode(encoding), ())


@pytest.mark.parametrize("location", ["/dev/zero", "/etc/passwd", "../../outside.xml", "file:///etc/hosts"])
def test_typesystem_imports_stay_in_their_folder(tmp_path, location):
    from kiwi_cas.cas.typesystem import merged_typesystem
    from kiwi_cas.errors import TypeSystemError

    ts = tmp_path / "a" / "b" / "TypeSystem.xml"
    ts.parent.mkdir(parents=True)
    ts.write_text('<?xml version="1.0"?><typeSystemDescription xmlns="http://uima.apache.org/resourceSpecifier">'
                  f'<imports><import location="{location}"/></imports><types/></typeSystemDescription>')
    with pytest.raises(TypeSystemError, match="outside the typesystem's folder"):
        merged_typesystem((str(ts),))
