"""``kiwi-cas serve``: a real uvicorn process on loopback, called over HTTP like MedCATservice's clients do."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import cli

pytest.importorskip("starlette", reason="pip install 'kiwi_cas[serve]'")
pytest.importorskip("uvicorn")

EXAMPLES = REPO / "examples"
MARKER = "Quillfeather"  # a surname in a note: must not appear in the server's output
NOTE = f"Mr. {MARKER} denies chest pain. His mother had breast cancer. Aspirin 81 mg daily."


class Server:
    def __init__(self, tmp: Path, *args: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.token = secrets.token_hex(16)
        token_file = tmp / f"token-{self.port}"
        token_file.write_text(self.token + "\n")
        self.log = tmp / f"server-{self.port}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "kiwi_cas.cli", "serve", "--port", str(self.port),
                                      "--token-file", str(token_file), *args],
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if self.get("/api/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(self.log.read_text()[-2000:])

    def request(self, path: str, body: bytes | None = None, token: str | None = "default",
                content_type: str = "application/json") -> tuple[int, bytes, dict]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                     headers={"Content-Type": content_type})
        if token is not None:
            req.add_header("Authorization", f"Bearer {self.token if token == 'default' else token}")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def get(self, path: str):
        return self.request(path)

    def post(self, path: str, payload) -> tuple[int, dict | bytes]:
        status, body, _ = self.request(path, json.dumps(payload).encode())
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def stop(self) -> int:
        """SIGTERM; uvicorn finishes in-flight requests, then re-raises the signal (status -15) or exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        return 0 if code == -signal.SIGTERM else code


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("srv"))
    yield srv
    srv.stop()


def test_process_has_medcatservice_shapes_and_matches_the_medcat_export(server, tmp_path):
    status, out = server.post("/api/process", {"content": {"text": NOTE, "footer": {"doc_id": 7}}})
    assert status == 200
    result = out["result"]
    assert result["success"] is True and result["text"] == NOTE and result["footer"] == {"doc_id": 7}
    assert result["timestamp"].endswith("+00:00") and "elapsed_time" in result
    assert set(out["medcat_info"]) >= {"service_app_name", "service_language", "service_version", "service_model"}
    ents = result["annotations"]
    assert isinstance(ents, dict) and all(k == str(v["id"]) for k, v in ents.items())
    chest = next(e for e in ents.values() if NOTE[e["start"]:e["end"]] == "chest pain")
    assert chest["meta_anns"]["Presence"]["value"] == "False"
    assert all(set(e["meta_anns"]) >= {"Presence", "Subject/Experiencer"} for e in ents.values())
    # the same note through the CLI and `export --format medcat` gives the same entities
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "note.txt").write_text(NOTE)
    cli("annotate", tmp_path / "in", "-o", tmp_path / "out")
    cli("export", "--format", "medcat", tmp_path / "out", "-o", tmp_path / "mc")
    exported = json.loads((tmp_path / "mc" / "note.json").read_text())["entities"]
    assert [json.dumps(v, sort_keys=True) for v in exported.values()] == \
        [json.dumps(v, sort_keys=True) for v in ents.values()]


def test_bulk_keeps_input_order_and_reports_bad_items(server):
    status, out = server.post("/api/process_bulk", {"content": [
        {"text": "Aspirin 81 mg daily."}, {"footer": {"x": 1}}, {"text": ""}, {"text": NOTE}]})
    assert status == 200
    r = out["result"]
    assert [x["success"] for x in r] == [True, False, True, True]
    assert r[1]["errors"] == ["'text' field missing in the payload content."] and r[1]["footer"] == {"x": 1}
    assert r[2]["annotations"] == {} and r[3]["text"] == NOTE
    aspirin = next(e for e in r[0]["annotations"].values() if e["source_value"] == "Aspirin")
    assert aspirin["pretty_name"] == "drug" and aspirin["context_left"] == [] and "types" not in aspirin


def test_errors_are_4xx_with_one_line(server):
    status, body, _ = server.request("/api/process", b"{not json")
    assert status == 400 and body.count(b"\n") == 1
    assert server.post("/api/process", {"text": "no content"})[0] == 400
    assert server.request("/api/process", json.dumps({"content": {"text": "x"}}).encode(), token=None)[0] == 401
    assert server.request("/api/info", token="wrong-token-0123456789")[0] == 401
    assert server.request("/api/health", token=None)[0] == 200
    # a body announced over the limit is refused before it is read
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest("POST", "/api/process")
    conn.putheader("Authorization", f"Bearer {server.token}")
    conn.putheader("Content-Length", str(11 * 1024 * 1024))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    # and one that is not announced (chunked) is cut off at the limit
    chunked = iter([b'{"content": {"text": "', b"a" * (6 * 1024 * 1024), b"a" * (6 * 1024 * 1024), b'"}}'])
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/process", data=chunked,
                                 headers={"Authorization": f"Bearer {server.token}", "Transfer-Encoding": "chunked"})
    try:
        status = urllib.request.urlopen(req, timeout=60).status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except urllib.error.URLError:
        status = 413  # the server answered 413 and closed while the client was still sending
    assert status == 413
    status, body, _ = server.request("/api/xmi", b"<xmi:XMI broken", content_type="application/xml")
    assert status == 422 and b"\n" == body[-1:] and body.count(b"\n") == 1
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    status, body, _ = server.request("/api/xmi", doctype, content_type="application/xml")
    assert status == 422 and b"root:" not in body
    assert server.request("/api/xmi?task=bogus", b"<x/>", content_type="application/xml")[0] == 400
    assert server.request("/api/process", b'{"content": {"text": "x"}}', content_type="text/plain")[0] == 415
    assert server.request("/api/xmi", b"<x/>", content_type="application/json")[0] == 415
    # and it keeps serving
    assert server.post("/api/process", {"content": {"text": "Denies chest pain."}})[0] == 200


def test_xmi_in_annotated_xmi_out(tmp_path, tmp_path_factory, uima_java):
    from kiwi_cas.cas.io import load_xmi_bytes
    from kiwi_cas.cas.writer import read_kiwi

    srv = Server(tmp_path_factory.mktemp("xmi"), "--typesystem", str(EXAMPLES / "xmi" / "TypeSystem.xml"))
    try:
        source = (EXAMPLES / "xmi" / "discharge_summary.xmi").read_bytes()
        status, body, headers = srv.request("/api/xmi", source, content_type="application/xml")
        assert status == 200 and headers["content-type"].startswith("application/xml")
        cli("annotate", EXAMPLES / "xmi" / "discharge_summary.xmi", "-o", tmp_path / "cli")
        assert body == (tmp_path / "cli" / "discharge_summary.xmi").read_bytes()  # the CLI's output, byte for byte
        ext = read_kiwi(load_xmi_bytes(body, (str(EXAMPLES / "xmi" / "TypeSystem.xml"),)).cas)
        assert f"entities={len(ext.entities)}" in headers["x-kiwi-counts"]
        (tmp_path / "reply.xmi").write_bytes(body)
        [check] = uima_java.check(tmp_path / "cli" / "TypeSystem.xml", [tmp_path / "reply.xmi"])
        assert check["ok"], check  # strict load in Apache UIMA Java
    finally:
        assert srv.stop() == 0
    assert MARKER not in srv.log.read_text()


def test_concurrent_requests_are_batched_and_answered_alike(server):
    texts = [f"Patient {i} denies chest pain. Metoprolol 25 mg b.i.d." for i in range(12)]
    alone = [server.post("/api/process", {"content": {"text": t}})[1]["result"]["annotations"] for t in texts[:2]]
    results: dict[int, dict] = {}

    def call(i: int) -> None:
        results[i] = server.post("/api/process", {"content": {"text": texts[i]}})[1]["result"]["annotations"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(texts)
    assert results[0] == alone[0] and results[1] == alone[1]  # the same answer whatever the batch


def test_a_full_queue_answers_503_and_logs_hold_no_note_text(tmp_path):
    srv = Server(tmp_path, "--queue-size", "2")
    try:
        status, body = srv.post("/api/process_bulk", {"content": [{"text": NOTE}] * 3})
        assert status == 503
        assert srv.post("/api/process_bulk", {"content": [{"text": NOTE}] * 2})[0] == 200
    finally:
        srv.stop()
    assert MARKER not in srv.log.read_text()


def test_sigterm_lets_in_flight_requests_finish(tmp_path):
    srv = Server(tmp_path)
    answer: dict = {}

    def call() -> None:
        answer["r"] = srv.post("/api/process_bulk", {"content": [{"text": NOTE * 20}] * 16})

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.5)
    assert srv.stop() == 0
    t.join(timeout=120)
    assert answer["r"][0] == 200 and len(answer["r"][1]["result"]) == 16
    assert os.path.getsize(srv.log) < 10_000 and MARKER not in srv.log.read_text()
