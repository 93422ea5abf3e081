"""``kiwi-cas view`` in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import cli

webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(CHROMEDRIVER is None, reason="apt-get install chromium chromium-driver")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Annotated example notes, and a gold folder made from them with known misses and false positives."""
    root = tmp_path_factory.mktemp("view")
    cli("annotate", REPO / "examples" / "xmi", "-o", root / "pred")
    cli("export", "--format", "brat", root / "pred", "-o", root / "gold")
    ann = root / "gold" / "cardiology_followup.ann"
    lines = ann.read_text().splitlines()
    kept = [line for line in lines if not line.startswith("R")]  # gold without relations: every predicted one is FP
    first_t = next(i for i, line in enumerate(kept) if line.startswith("T"))
    del kept[first_t]  # one predicted span becomes a false positive
    kept.append("T999\tproblem 0 5\tCHIEF")  # one gold span the model missed
    ann.write_text("\n".join(kept) + "\n")
    cli("view", root / "pred", "-o", root / "report.html", "--gold", root / "gold")
    return root


def _open(browser, path: Path):
    browser.get(path.as_uri())
    return browser.execute_script("return window.kiwiView !== undefined")


def _errors(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_summary_scores_match_kiwi_cas_evaluate(browser, corpus):
    assert _open(browser, corpus / "report.html")
    assert not _errors(browser)
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # nothing fetched
    report = json.loads(cli("evaluate", "--gold", corpus / "gold", "--pred", corpus / "pred", "--json").stdout)
    for task in ("ner", "modifier", "re"):
        for label, want in report[task]["exact"]["per_type"].items():
            row = browser.find_elements("css selector", f'table[data-task="{task}"] tr[data-label="{label}"] td')
            tp, fp, fn = (int(c.text) for c in row[1:4])
            assert (tp, fp, fn) == (want["tp_pred"], want["n_pred"] - want["tp_pred"], want["n_gold"] - want["tp_gold"])
        micro = browser.find_elements("css selector", f'table[data-task="{task}"] tr[data-label="__micro__"] td')
        assert micro[6].text == f'{report[task]["exact"]["micro"]["f1"]:.3f}'


def test_a_note_has_its_spans_arcs_diff_and_filters(browser, corpus):
    _open(browser, corpus / "report.html")
    browser.execute_script("window.kiwiView.show(0)")
    name = browser.find_element("id", "title").text
    assert name == "cardiology_followup"
    data = browser.execute_script("return JSON.parse(document.getElementById('kiwi-data').textContent).docs[0]")
    spans = {s["id"] for s in data["spans"]}
    shown = set(browser.execute_script(
        "return Array.from(document.querySelectorAll('#note .bar')).map(b => +b.dataset.span)"))
    assert shown == spans  # every span, nested ones included, has its bar
    arcs = browser.find_elements("css selector", "#arcs path")
    assert len(arcs) == len(data["relations"]) > 10
    assert len(browser.find_elements("css selector", "#note .bar.fn")) == 1
    assert len(browser.find_elements("css selector", "#note .bar.fp")) == 1
    assert len(browser.find_elements("css selector", "#arcs path.fp")) == len(data["relations"])
    negated = browser.find_elements("css selector", "#note .bar.negated")
    assert negated  # "denies shortness of breath"
    # filters change what is visible
    browser.find_element("css selector", 'input[data-label="problem"]').click()
    assert not browser.find_elements("css selector", "#note .bar.l-problem")
    assert len(browser.find_elements("css selector", "#arcs path")) < len(arcs)
    browser.find_element("css selector", 'input[data-label="problem"]').click()
    browser.find_element("css selector", 'input[data-assertion="negated"]').click()
    assert not browser.find_elements("css selector", "#note .bar.negated")
    assert browser.find_elements("css selector", "#note .bar.l-problem")
    browser.find_element("css selector", 'input[data-assertion="negated"]').click()
    # details on click
    browser.find_element("css selector", "#note .seg[data-spans]").click()
    details = browser.find_element("id", "details").text
    assert "offsets" in details and "confidence" in details
    assert not _errors(browser)


def test_a_thousand_notes_open_lazily(browser, tmp_path):
    src = tmp_path / "brat"
    src.mkdir()
    for i in range(1000):
        (src / f"n{i:04d}.txt").write_text("Patient denies chest pain.\n")
        (src / f"n{i:04d}.ann").write_text("T1\tproblem 15 25\tchest pain\nT2\tnegation 8 14\tdenies\n"
                                           "R1\thasAttr Arg1:T1 Arg2:T2\n")
    cli("view", src, "-o", tmp_path / "big.html")
    _open(browser, tmp_path / "big.html")
    assert len(browser.find_elements("css selector", "nav li")) == 101  # the summary and one page of notes
    assert browser.find_element("id", "pageinfo").text.startswith("1 / 10")
    browser.execute_script("window.kiwiView.show(999)")
    assert len(browser.find_elements("css selector", "#note .bar")) == 2
    assert not _errors(browser)


def test_view_writes_only_where_asked_and_refuses_a_missing_folder(tmp_path):
    before = set(Path("/tmp").iterdir())
    cli("view", REPO / "examples" / "xmi", "-o", tmp_path / "only.html")
    assert [p.name for p in tmp_path.iterdir()] == ["only.html"]
    assert {p for p in Path("/tmp").iterdir() if p.suffix == ".html"} <= before
    cli("view", tmp_path / "nope", "-o", tmp_path / "x.html", expect=2)
