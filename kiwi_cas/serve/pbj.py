"""The Python side of Apache cTAKES's Python Bridge to Java (PBJ), over STOMP.

cTAKES's PBJ sender puts each CAS as XMI text on a queue; this worker takes it,
annotates it with the same KiwiAnnotator as the CLI, and puts the result on the reply
queue, in order. The stop message ``Apache cTAKES PBJ Stop Message.`` is forwarded and
ends the worker. Unlike ctakes_pbj (whose pinned cassis lets lxml read external
entities): messages are acknowledged only after their result was sent (client-individual
acks, one message in flight, so a slow annotator never loses work and the broker holds
the backlog); a bad CAS is reported on an error queue and skipped; SIGINT/SIGTERM finish
the current message and disconnect cleanly. Error reports never contain note text.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import stomp

from kiwi_cas.annotate.annotator import KiwiAnnotator
from kiwi_cas.annotate.job import ReadOptions, Source, annotate_sources
from kiwi_cas.cas.typesystem import ctakes_typesystem_path
from kiwi_cas.errors import ServiceError

STOP_MESSAGE = "Apache cTAKES PBJ Stop Message."
DEFAULT_TYPESYSTEM = ctakes_typesystem_path()
log = logging.getLogger("kiwi_cas.serve.pbj")


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


@dataclass
class PbjStats:
    processed: int = 0
    failed: int = 0
    stopped_by_message: bool = False
    errors: list[dict] = field(default_factory=list)


class _Listener(stomp.ConnectionListener):
    def __init__(self, inbox: queue.Queue) -> None:
        self.inbox = inbox

    def on_message(self, frame) -> None:
        self.inbox.put(frame)

    def on_error(self, frame) -> None:
        log.error("broker error: %s", frame.headers.get("message", "?"))

    def on_disconnected(self) -> None:
        self.inbox.put(None)


class PbjWorker:
    def __init__(self, annotator: KiwiAnnotator, config: PbjConfig) -> None:
        self.annotator = annotator
        self.config = config
        self.inbox: queue.Queue = queue.Queue()
        self.stats = PbjStats()
        self._stop = threading.Event()
        self.conn = stomp.Connection([(config.host, config.port)],
                                     heartbeats=(config.heartbeat_ms, config.heartbeat_ms))
        self.conn.set_listener("kiwi", _Listener(self.inbox))

    def connect(self) -> None:
        try:
            self.conn.connect(self.config.user, self.config.password, wait=True)
        except stomp.exception.StompException as exc:
            raise ServiceError(f"cannot connect to the STOMP broker at {self.config.host}:{self.config.port} "
                               f"({type(exc).__name__}); is it running, and are the credentials right?",
                               "broker_unreachable") from exc
        # one unacknowledged message at a time (ActiveMQ and RabbitMQ spell the header differently)
        self.conn.subscribe(destination=f"/queue/{self.config.receive_queue}", id="kiwi", ack="client-individual",
                            headers={"activemq.prefetchSize": "1", "prefetch-count": "1"})

    def request_stop(self, *_args) -> None:
        self._stop.set()
        self.inbox.put(None)

    def run(self) -> PbjStats:
        """Serve until the stop message, a signal or a disconnect."""
        self.annotator.initialize()
        ts_paths = tuple(str(p.resolve()) for p in self.config.typesystems)
        options = ReadOptions(lenient=self.config.lenient)
        while not self._stop.is_set():
            frame = self.inbox.get()
            if frame is None:
                break
            body = frame.body if isinstance(frame.body, str) else frame.body.decode("utf-8", "replace")
            msg_id = frame.headers.get("message-id")
            ack_id = frame.headers.get("ack", msg_id)
            if body.strip() == STOP_MESSAGE:
                self.conn.send(destination=f"/queue/{self.config.send_queue}", body=STOP_MESSAGE)
                self.conn.ack(ack_id, "kiwi")
                self.stats.stopped_by_message = True
                break
            outcome = annotate_sources(self.annotator, [Source(str(msg_id), body.encode("utf-8"),
                                                               typesystems=ts_paths)], options)[0]
            if not outcome.ok:  # a bad CAS is reported and skipped, never fatal
                kind, message = outcome.error
                report = {"message_id": msg_id, "error_type": kind, "message": message}
                self.stats.failed += 1
                self.stats.errors.append(report)
                log.warning("skipped message %s: %s", msg_id, kind)
                self.conn.send(destination=f"/queue/{self.config.error_queue}", body=json.dumps(report),
                               content_type="application/json")
                self.conn.ack(ack_id, "kiwi")
                continue
            self.conn.send(destination=f"/queue/{self.config.send_queue}", body=outcome.output.decode("utf-8"))
            self.conn.ack(ack_id, "kiwi")  # only now: a crash before this redelivers the message
            self.stats.processed += 1
        self.close()
        return self.stats

    def close(self) -> None:
        try:
            if self.conn.is_connected():
                self.conn.unsubscribe("kiwi")
                self.conn.disconnect()
        except Exception:  # already gone
            pass


def serve(annotator: KiwiAnnotator, config: PbjConfig) -> PbjStats:
    worker = PbjWorker(annotator, config)
    worker.connect()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, worker.request_stop)
    return worker.run()
