"""The Python side of Apache cTAKES's Python Bridge to Java (PBJ), over STOMP.

cTAKES's PBJ sender puts each CAS as XMI text on a queue; this worker takes it, annotates it
with :func:`kiwi_cas.annotate.job.annotate_sources` (the same code as the CLI), and puts the
result on the reply queue, in order. The stop message ``Apache cTAKES PBJ Stop Message.`` is
forwarded and ends the worker.

Exactly-once replies: one message is in flight at a time (client-individual acks, prefetch 1).
Its reply (persistent) and its ack go to the broker in one STOMP transaction, and the worker
waits for the broker's receipt of the COMMIT before it takes the next message. If the worker
is killed or the broker goes away before the commit, neither happened: the broker redelivers
the message and the reply is made once. A lost connection is re-established with backoff
(a bounded number of tries, then exit 4). A bad CAS (or a body that is not UTF-8) is reported
on an error queue, in the same transaction, and skipped. Reports never contain note text.
SIGINT/SIGTERM finish the current message and disconnect cleanly.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import stomp
from stomp.exception import ConnectFailedException, StompException

from kiwi_cas.annotate.annotator import KiwiAnnotator
from kiwi_cas.annotate.job import ReadOptions, Source, annotate_sources
from kiwi_cas.cas.typesystem import ctakes_typesystem_path
from kiwi_cas.errors import ServiceError

STOP_MESSAGE = "Apache cTAKES PBJ Stop Message."
DEFAULT_TYPESYSTEM = ctakes_typesystem_path()
log = logging.getLogger("kiwi_cas.pbj")


class _NoTracebacks(logging.Filter):
    """stomp.py logs a traceback for every frame it fails to send to a broker that went away; the worker
    handles that (reconnect, redelivery), so its log keeps the one line and drops the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


logging.getLogger("stomp.py").addFilter(_NoTracebacks())


@dataclass
class PbjConfig:
    host: str = "localhost"
    port: int = 61616
    user: str = "guest"
    password: str = "guest"
    receive_queue: str = "JavaToPy"
    send_queue: str = "PyToJava"
    error_queue: str = "KiwiPbjErrors"
    typesystems: tuple[Path, ...] = (DEFAULT_TYPESYSTEM,)
    lenient: bool = False
    heartbeat_ms: int = 10000
    reconnect_tries: int = 10  # consecutive failed connects before giving up (exit 4)
    receipt_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    tls: bool = False
    tls_ca: Path | None = None  # CA bundle to verify the broker; None: the system's
    tls_cert: Path | None = None  # client certificate (and key) for brokers that ask for one
    tls_key: Path | None = None


@dataclass
class PbjStats:
    processed: int = 0
    failed: int = 0
    reconnects: int = 0
    stopped_by_message: bool = False
    errors: list[dict] = field(default_factory=list)


class _Listener(stomp.ConnectionListener):
    """Hands frames to the worker thread, tagged with the connection they came on."""

    def __init__(self, worker: "PbjWorker", generation: int) -> None:
        self.worker = worker
        self.generation = generation

    def on_message(self, frame) -> None:
        self.worker.inbox.put((self.generation, frame))

    def on_receipt(self, frame) -> None:
        self.worker.receipt(frame.headers.get("receipt-id", ""))

    def on_error(self, frame) -> None:
        log.error("broker error: %s", frame.headers.get("message", "?"))

    def on_disconnected(self) -> None:
        self.worker.inbox.put((self.generation, None))


class _LostConnection(Exception):
    pass


class PbjWorker:
    def __init__(self, annotator: KiwiAnnotator, config: PbjConfig) -> None:
        self.annotator = annotator
        self.config = config
        self.inbox: queue.Queue = queue.Queue()
        self.stats = PbjStats()
        self.generation = 0
        self.conn: stomp.Connection | None = None
        self._stop = threading.Event()
        self._receipts: dict[str, threading.Event] = {}

    # ---- connection --------------------------------------------------------------------------

    def _open(self) -> None:
        cfg = self.config
        conn = stomp.Connection([(cfg.host, cfg.port)], heartbeats=(cfg.heartbeat_ms, cfg.heartbeat_ms),
                                auto_decode=False, reconnect_attempts_max=1)
        if cfg.tls:
            conn.set_ssl(for_hosts=[(cfg.host, cfg.port)], ca_certs=str(cfg.tls_ca) if cfg.tls_ca else None,
                         cert_file=str(cfg.tls_cert) if cfg.tls_cert else None,
                         key_file=str(cfg.tls_key) if cfg.tls_key else None)
        conn.set_listener("kiwi", _Listener(self, self.generation))
        conn.connect(cfg.user, cfg.password, wait=False)
        # stomp.py's own wait has no deadline: a broker that accepts TCP while starting up would hang us
        deadline = time.monotonic() + cfg.connect_timeout_s
        while not conn.is_connected() and time.monotonic() < deadline and conn.transport.running:
            time.sleep(0.05)
        if not conn.is_connected():
            conn.transport.stop()
            raise ConnectFailedException("no CONNECTED frame in time")
        # one unacknowledged message at a time (ActiveMQ and RabbitMQ spell the header differently)
        conn.subscribe(destination=f"/queue/{cfg.receive_queue}", id="kiwi", ack="client-individual",
                       headers={"activemq.prefetchSize": "1", "prefetch-count": "1"})
        self.conn = conn

    def connect(self) -> None:
        """Connect (again), with backoff; a ServiceError (exit 4) after ``reconnect_tries`` failures."""
        delay = 0.5
        for attempt in range(1, self.config.reconnect_tries + 1):
            if self._stop.is_set():
                return
            self.generation += 1
            try:
                self._open()
                return
            except ConnectFailedException as exc:
                cause = "refused or unreachable (wrong credentials, or no broker listening)"
                last: Exception = exc
            except (StompException, OSError) as exc:
                cause = type(exc).__name__
                last = exc
            log.warning("broker %s:%s: %s (try %d of %d)", self.config.host, self.config.port, cause, attempt,
                        self.config.reconnect_tries)
            if attempt < self.config.reconnect_tries:
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise ServiceError(f"cannot connect to the STOMP broker at {self.config.host}:{self.config.port} after "
                           f"{self.config.reconnect_tries} tries ({cause}); is it running, and are the credentials "
                           "right?", "broker_unreachable") from last

    def receipt(self, receipt_id: str) -> None:
        event = self._receipts.get(receipt_id)
        if event is not None:
            event.set()

    def _commit(self, sends: list[tuple[str, str, dict]], ack_id: str) -> None:
        """Send and ack in one transaction; return only when the broker has the commit."""
        conn = self.conn
        tx = str(uuid.uuid4())
        rid = f"commit-{tx}"
        done = self._receipts[rid] = threading.Event()
        try:
            conn.begin(transaction=tx)
            for destination, body, headers in sends:
                conn.send(destination=destination, body=body, transaction=tx,
                          headers={"persistent": "true", **headers})
            conn.ack(ack_id, "kiwi", transaction=tx)
            conn.commit(transaction=tx, headers={"receipt": rid})
            if not done.wait(self.config.receipt_timeout_s):
                raise _LostConnection("no receipt for the commit")
        except (StompException, OSError) as exc:
            raise _LostConnection(type(exc).__name__) from exc
        finally:
            self._receipts.pop(rid, None)

    # ---- serving -----------------------------------------------------------------------------

    def request_stop(self, *_args) -> None:
        self._stop.set()
        self.inbox.put((self.generation, None))

    def run(self) -> PbjStats:
        """Serve until the stop message or a signal; reconnect when the broker goes away."""
        self.annotator.initialize()
        ts_paths = tuple(str(p.resolve()) for p in self.config.typesystems)
        options = ReadOptions(lenient=self.config.lenient)
        while not self._stop.is_set():
            generation, frame = self.inbox.get()
            if generation != self.generation:
                continue  # from a connection that is gone: the broker redelivers it on this one
            if frame is None:
                if self._stop.is_set():
                    break
                self._reconnect("the connection was lost")
                continue
            try:
                if self._handle(frame, ts_paths, options):
                    break
            except _LostConnection as exc:
                self._reconnect(f"lost while replying ({exc})")
        self.close()
        return self.stats

    def _reconnect(self, why: str) -> None:
        log.warning("broker connection %s; reconnecting (the message in flight is redelivered)", why)
        self.stats.reconnects += 1
        self.close()
        self.connect()

    def _handle(self, frame, ts_paths: tuple[str, ...], options: ReadOptions) -> bool:
        """Process one message; True when it was the stop message."""
        cfg = self.config
        msg_id = frame.headers.get("message-id")
        ack_id = frame.headers.get("ack", msg_id)
        body = frame.body if isinstance(frame.body, bytes) else frame.body.encode("utf-8")
        if body.strip() == STOP_MESSAGE.encode():
            self._commit([(f"/queue/{cfg.send_queue}", STOP_MESSAGE, {})], ack_id)
            self.stats.stopped_by_message = True
            return True
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            outcome_error = ("encoding", f"the message body is not valid UTF-8 (at byte {exc.start})")
        else:
            outcome = annotate_sources(self.annotator, [Source(str(msg_id), body, typesystems=ts_paths)], options)[0]
            outcome_error = outcome.error
        if outcome_error is not None:  # a bad CAS is reported and skipped, never fatal
            kind, message = outcome_error
            report = {"message_id": msg_id, "error_type": kind, "message": message}
            self._commit([(f"/queue/{cfg.error_queue}", json.dumps(report), {"content-type": "application/json"})],
                         ack_id)
            self.stats.failed += 1
            self.stats.errors.append(report)
            log.warning("skipped message %s: %s", msg_id, kind)
            return False
        self._commit([(f"/queue/{cfg.send_queue}", outcome.output.decode("utf-8"), {})], ack_id)
        self.stats.processed += 1
        return False

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if conn.is_connected():
                conn.unsubscribe("kiwi")
                conn.disconnect()
        except (StompException, OSError):
            pass  # already gone


def serve(annotator: KiwiAnnotator, config: PbjConfig) -> PbjStats:
    worker = PbjWorker(annotator, config)
    worker.connect()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, worker.request_stop)
    return worker.run()
