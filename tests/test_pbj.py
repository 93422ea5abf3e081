"""cTAKES PBJ over a real STOMP broker (RabbitMQ with its STOMP plugin, started here on loopback).

A Python stand-in for cTAKES's Java PBJ sender puts 20 CASes on the queue, a poisoned
one in the middle, then the stop message; all of it is sent before the annotator has
done anything, so the broker must hold the backlog.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from kiwi_cas.serve.pbj import DEFAULT_TYPESYSTEM, STOP_MESSAGE

stomp = pytest.importorskip("stomp")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.3)
    return False


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    exe = shutil.which("rabbitmq-server") or ("/usr/sbin/rabbitmq-server" if Path("/usr/sbin/rabbitmq-server").exists() else None)
    if exe is None:
        pytest.skip("PBJ broker test skipped: needs Debian package rabbitmq-server (STOMP plugin)")
    # not under pytest's 0700 tmp tree: the server runs as the rabbitmq user and must reach its folder
    home = Path(tempfile.mkdtemp(prefix="kiwi-rabbit-"))
    stomp_port = _free_port()
    (home / "enabled_plugins").write_text("[rabbitmq_stomp].\n")
    (home / "rabbitmq.conf").write_text(f"stomp.listeners.tcp.1 = 127.0.0.1:{stomp_port}\n"
                                        f"listeners.tcp.1 = 127.0.0.1:{_free_port()}\n")
    for d in ("mnesia", "log"):
        (home / d).mkdir()
    if os.getuid() == 0:  # the server script drops to the rabbitmq user
        try:
            uid = pwd.getpwnam("rabbitmq")
            for p in [home, *home.rglob("*")]:
                os.chown(p, uid.pw_uid, uid.pw_gid)
        except KeyError:
            pass
    env = {**os.environ, "HOME": str(home), "RABBITMQ_NODENAME": f"kiwi{stomp_port}@localhost",
           "RABBITMQ_MNESIA_BASE": str(home / "mnesia"), "RABBITMQ_LOG_BASE": str(home / "log"),
           "RABBITMQ_FEATURE_FLAGS_FILE": str(home / "feature_flags"),
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
           "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"), "RABBITMQ_DIST_PORT": str(_free_port())}
    proc = subprocess.Popen([exe], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    if not _wait_port(stomp_port, 90):
        proc.kill()
        pytest.fail("RabbitMQ did not open its STOMP port")

    class Broker(int):
        ctl = ["rabbitmqctl", "-n", env["RABBITMQ_NODENAME"]]

        def queues(self) -> str:
            return subprocess.run(self.ctl + ["list_queues", "name", "durable", "messages_ready",
                                              "messages_unacknowledged"], env=env, capture_output=True,
                                  text=True).stdout

        def restart(self) -> None:
            """Stop and start the broker application: every connection drops; durable queues and
            persistent messages come back."""
            ctl = self.ctl
            subprocess.run(ctl + ["stop_app"], env=env, capture_output=True, timeout=120, check=True)
            time.sleep(2)
            subprocess.run(ctl + ["start_app"], env=env, capture_output=True, timeout=120, check=True)
            assert _wait_port(stomp_port, 90)

    yield Broker(stomp_port)
    subprocess.run(["rabbitmqctl", "-n", env["RABBITMQ_NODENAME"], "stop"], env=env, capture_output=True, timeout=60)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
    shutil.rmtree(home, ignore_errors=True)


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.messages: list[tuple[str, str]] = []

    def on_message(self, frame):
        self.messages.append((frame.headers["destination"], frame.body))


def _cas_xmi(i: int) -> str:
    from cassis import Cas

    from kiwi_cas.cas.typesystem import merged_typesystem

    cas = Cas(typesystem=merged_typesystem((str(DEFAULT_TYPESYSTEM.resolve()),)))
    cas.sofa_string = f"Note {i}: The patient denies chest pain. Started aspirin 81 mg daily."
    return cas.to_xmi()


def test_twenty_cases_in_order_with_a_poisoned_one(broker, tmp_path):
    port = int(broker)
    q_in, q_out, q_err = (f"{n}{port}" for n in ("JavaToPy", "PyToJava", "Errors"))
    sender = stomp.Connection([("127.0.0.1", port)])
    collector = Collector()
    sender.set_listener("c", collector)
    sender.connect("guest", "guest", wait=True)
    sender.subscribe(f"/queue/{q_out}", id="out", ack="auto")
    sender.subscribe(f"/queue/{q_err}", id="err", ack="auto")
    # the whole stream is queued before the annotator even starts: it is slower than the sender
    for i in range(20):
        if i == 10:
            sender.send(f"/queue/{q_in}", body='<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM '
                                               '"file:///etc/passwd">]><xmi:XMI>&e;</xmi:XMI>')
        sender.send(f"/queue/{q_in}", body=_cas_xmi(i))
    sender.send(f"/queue/{q_in}", body=STOP_MESSAGE)
    worker = subprocess.run([sys.executable, "-m", "kiwi_cas.cli", "pbj", "--port", str(port), "--receive-queue", q_in,
                             "--send-queue", q_out, "--error-queue", q_err], capture_output=True, text=True, timeout=600)
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert "20 annotated, 1 skipped, 0 reconnects (stop message received)" in worker.stderr
    deadline = time.time() + 30
    while time.time() < deadline and not any(b == STOP_MESSAGE for _, b in collector.messages):
        time.sleep(0.2)
    sender.disconnect()
    outs = [b for d, b in collector.messages if d.endswith(q_out)]
    errs = [json.loads(b) for d, b in collector.messages if d.endswith(q_err)]
    assert outs[-1] == STOP_MESSAGE and len(outs) == 21
    from cassis import load_cas_from_xmi

    from kiwi_cas.cas.typesystem import merged_typesystem

    ts = merged_typesystem((str(DEFAULT_TYPESYSTEM.resolve()),))
    for i, body in enumerate(outs[:-1]):
        cas = load_cas_from_xmi(body, typesystem=ts)
        assert cas.sofa_string.startswith(f"Note {i}:")  # in order
        assert len(cas.select("org.clinicalnlp.kiwi.type.ClinicalEntity")) >= 1
    assert len(errs) == 1 and errs[0]["error_type"] == "unsafe_xml" and "passwd" not in json.dumps(errs)


def _drain(port: int, queue_name: str, quiet_s: float = 3.0) -> list[str]:
    """Every message now on a queue (acked as read)."""
    conn = stomp.Connection([("127.0.0.1", port)])
    got = Collector()
    conn.set_listener("c", got)
    conn.connect("guest", "guest", wait=True)
    conn.subscribe(f"/queue/{queue_name}", id="d", ack="auto")
    last, seen = time.time(), 0
    while time.time() - last < quiet_s:
        time.sleep(0.2)
        if len(got.messages) != seen:
            seen, last = len(got.messages), time.time()
    conn.disconnect()
    return [b.decode() if isinstance(b, bytes) else b for _, b in got.messages]


def _wait_for_replies(broker, queue_name: str, n: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in broker.queues().splitlines():
            parts = line.split("\t")
            if parts[0] == queue_name and int(parts[2]) >= n:
                return
        time.sleep(0.3)
    raise AssertionError(f"fewer than {n} replies on {queue_name} in {timeout} s")


def _worker(port: int, q_in: str, q_out: str, q_err: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kiwi_cas.cli", "pbj", "--host", "127.0.0.1", "--port", str(port),
                             "--receive-queue", q_in, "--send-queue", q_out, "--error-queue", q_err],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "KIWI_PBJ_USER": "guest", "KIWI_PBJ_PASSWORD": "guest"})


def test_exactly_once_replies_across_a_worker_kill_and_a_broker_restart(broker):
    port, n = int(broker), 120
    q_in, q_out, q_err = (f"{name}{port}x" for name in ("JavaToPy", "PyToJava", "Errors"))
    sender = stomp.Connection([("127.0.0.1", port)])
    sender.connect("guest", "guest", wait=True)
    for i in range(n):
        sender.send(f"/queue/{q_in}", body=_cas_xmi(i), headers={"persistent": "true"})
    sender.send(f"/queue/{q_in}", body=b"\xff\xfe not UTF-8", headers={"persistent": "true"})
    sender.send(f"/queue/{q_in}", body=STOP_MESSAGE, headers={"persistent": "true"})
    sender.disconnect()

    first = _worker(port, q_in, q_out, q_err)
    _wait_for_replies(broker, q_out, 10)
    first.kill()  # kill -9 in the middle of the stream
    first.wait()
    second = _worker(port, q_in, q_out, q_err)
    _wait_for_replies(broker, q_out, 40)
    broker.restart()  # the broker goes away while the worker is busy, and comes back
    try:
        _, err = second.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        second.kill()
        raise AssertionError(second.communicate()[1][-4000:] + broker.queues()) from None
    assert second.returncode == 0, err[-3000:]
    assert "1 reconnects" in err and "Traceback" not in err, err[-4000:]
    outs = _drain(port, q_out)
    errs = [json.loads(b) for b in _drain(port, q_err)]
    notes = [b for b in outs if b != STOP_MESSAGE]
    firsts = sorted(int(b.split("Note ", 1)[1].split(":", 1)[0]) for b in notes)
    assert firsts == list(range(n))  # every note answered exactly once: none lost, none twice
    assert outs.count(STOP_MESSAGE) == 1
    assert len(errs) == 1 and errs[0]["error_type"] == "encoding"
