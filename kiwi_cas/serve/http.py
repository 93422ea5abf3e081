"""``kiwi-cas serve``: a MedCATservice-compatible REST service, plus XMI in / XMI out, on Starlette + uvicorn.

Requests from many clients are pooled by :class:`Batcher`: documents wait at most
``batch_window_ms`` for company, then go through :func:`kiwi_cas.annotate.job.annotate_sources`
together (one extractor call) on one worker thread, so throughput under concurrent load
approaches the CLI's. The queue is bounded: when it is full the service answers 503 at once
instead of growing without limit.

Routes (MedCATservice shapes, see the README): ``GET /api/info``, ``GET /api/health``,
``POST /api/process``, ``POST /api/process_bulk``, ``POST /api/xmi``. Safe by default:
127.0.0.1, optional bearer token, a body size limit, the CLI's hardened XML loading, one-line
4xx reasons, never note text in a log line or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from kiwi_cas import __version__
from kiwi_cas.annotate.annotator import AnnotatorConfig, KiwiAnnotator
from kiwi_cas.annotate.job import Outcome, ReadOptions, Source, annotate_sources
from kiwi_cas.cas.io import load_xmi_bytes
from kiwi_cas.cas.writer import read_kiwi
from kiwi_cas.core.schema import TYPESYSTEM_PATH as KIWI_TYPESYSTEM_PATH
from kiwi_cas.core.spans import Document
from kiwi_cas.errors import UsageError
from kiwi_cas.formats.medcat import medcat_document

log = logging.getLogger("kiwi_cas.serve")

#: content types taken for XMI; a request without one is taken as the first
XMI_TYPES = ("application/xml", "text/xml", "application/vnd.xmi+xml", "application/octet-stream")


@dataclass(frozen=True)
class ServiceConfig:
    annotator: AnnotatorConfig = AnnotatorConfig()
    read: ReadOptions = ReadOptions()
    token: str | None = None  # bearer token; None: no authentication (loopback use)
    max_body_bytes: int = 10 * 1024 * 1024
    queue_size: int = 256  # documents waiting for the model
    batch_window_ms: float = 10.0
    max_batch: int = 32
    entity_output_mode: str = "dict"  # MedCATservice's ANNOTATIONS_ENTITY_OUTPUT_MODE: dict | list


class QueueFull(Exception):
    pass


class Batcher:
    """Pools documents of concurrent requests into extractor batches, on one worker thread."""

    def __init__(self, annotators: "AnnotatorPool", read: ReadOptions, config: ServiceConfig) -> None:
        self.annotators, self.read, self.config = annotators, read, config
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=config.queue_size)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="kiwi-model")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        self.executor.shutdown(wait=True)

    async def submit(self, config: AnnotatorConfig, sources: list[Source]) -> list[Outcome]:
        """Annotate ``sources``; QueueFull when the service is saturated (the caller answers 503)."""
        if self.queue.maxsize - self.queue.qsize() < len(sources):
            raise QueueFull()
        loop = asyncio.get_running_loop()
        futures = []
        for source in sources:
            fut = loop.create_future()
            self.queue.put_nowait((config, source, fut))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

    def _annotate(self, config: AnnotatorConfig, sources: list[Source]) -> list[Outcome]:
        """On the model thread: a request's first use of a configuration builds its annotator there
        too, never on the event loop."""
        return annotate_sources(self.annotators.get(config), sources, self.read)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            batch = [first]
            deadline = loop.time() + self.config.batch_window_ms / 1000
            while len(batch) < self.config.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            by_config: dict[AnnotatorConfig, list] = {}
            for item in batch:
                by_config.setdefault(item[0], []).append(item)
            for config, items in by_config.items():
                try:
                    outcomes = await loop.run_in_executor(self.executor, self._annotate, config, [i[1] for i in items])
                    for (_, _, fut), outcome in zip(items, outcomes):
                        if not fut.done():
                            fut.set_result(outcome)
                except Exception as exc:  # a run-level error (never note text): every waiting request gets it
                    log.error("annotation failed: %s", type(exc).__name__)
                    for _, _, fut in items:
                        if not fut.done():
                            fut.set_exception(exc)


class AnnotatorPool:
    """One extractor, shared by annotators for each per-request configuration (``/api/xmi`` options)."""

    def __init__(self, config: AnnotatorConfig) -> None:
        self.default = KiwiAnnotator(config)
        self.default.initialize()
        self._by_config = {config: self.default}

    def get(self, config: AnnotatorConfig) -> KiwiAnnotator:
        if config not in self._by_config:
            annotator = KiwiAnnotator(config, extractor=self.default.extractor)
            annotator.initialize()
            self._by_config[config] = annotator
        return self._by_config[config]


def _timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _error(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status)


def create_app(config: ServiceConfig) -> Starlette:
    state: dict = {}

    def info() -> dict:
        return {"service_app_name": "kiwi_cas", "service_language": "en", "service_version": __version__,
                "service_model": state["pool"].default.extractor.name}

    async def read_body(request: Request, kinds: tuple[str, ...], hint: str) -> bytes | Response:
        """The body, or an error response: 415 for another content type, 413 over the size limit
        (refused from Content-Length before reading, or cut off while streaming)."""
        kind = request.headers.get("content-type", kinds[0]).split(";")[0].strip()
        if kind not in kinds:
            return _error(415, f"send Content-Type: {hint}")
        length = request.headers.get("content-length")
        too_big = _error(413, f"request body over {config.max_body_bytes} bytes")
        if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            return too_big
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > config.max_body_bytes:
                return too_big
        return bytes(data)

    async def body_json(request: Request):
        """The request's JSON, or an error response."""
        body = await read_body(request, ("application/json",), "application/json")
        if isinstance(body, Response):
            return body
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _error(400, "the body is not valid UTF-8 JSON")

    async def annotate_texts(contents: list) -> list[dict]:
        """MedCATservice RESULTs for ``content`` items, in input order."""
        started = time.perf_counter()
        results: list[dict | None] = [None] * len(contents)
        todo: list[tuple[int, str]] = []
        for i, item in enumerate(contents):
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                results[i] = {"success": False, "errors": ["'text' field missing in the payload content."],
                              "timestamp": _timestamp()}
                if isinstance(item, dict) and "footer" in item:
                    results[i]["footer"] = item["footer"]
            else:
                todo.append((i, item["text"]))
        sources = [Source(f"request-{i}", data=text.encode("utf-8"), text=True) for i, text in todo]
        outcomes = await state["batcher"].submit(config.annotator, sources) if sources else []
        for (i, text), outcome in zip(todo, outcomes):
            item = contents[i]
            if not outcome.ok:
                result = {"success": False, "errors": [f"{outcome.error[0]}: {outcome.error[1]}"],
                          "timestamp": _timestamp()}
            else:
                loaded = load_xmi_bytes(outcome.output, (str(KIWI_TYPESYSTEM_PATH),))
                doc = Document(f"request-{i}", text, read_kiwi(loaded.cas))
                entities = medcat_document(doc)["entities"]
                annotations = ({str(k): v for k, v in entities.items()} if config.entity_output_mode == "dict"
                               else list(entities.values()))
                result = {"text": text, "annotations": annotations, "success": True, "timestamp": _timestamp(),
                          "elapsed_time": round(time.perf_counter() - started, 4)}
            if "footer" in item:
                result["footer"] = item["footer"]
            results[i] = result
        return results  # type: ignore[return-value]

    def medcat_route(bulk: bool):
        """``/api/process`` (one ``content`` object) or ``/api/process_bulk`` (a list of them)."""
        kind, shape = (list, '[{"text": ...}, ...]') if bulk else (dict, '{"text": ...}')

        async def handle(request: Request) -> Response:
            payload = await body_json(request)
            if isinstance(payload, Response):
                return payload
            if not isinstance(payload, dict) or not isinstance(payload.get("content"), kind):
                return _error(400, f'expected {{"content": {shape}}}')
            try:
                results = await annotate_texts(payload["content"] if bulk else [payload["content"]])
            except QueueFull:
                return _error(503, "the service is busy: retry later")
            return JSONResponse({"result": results if bulk else results[0], "medcat_info": info()})

        return handle

    async def xmi(request: Request) -> Response:
        body = await read_body(request, XMI_TYPES, "application/xml")
        if isinstance(body, Response):
            return body
        try:
            cfg = _xmi_config(config.annotator, request.query_params)
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            [outcome] = await state["batcher"].submit(cfg, [Source("request", data=body)])
        except QueueFull:
            return _error(503, "the service is busy: retry later")
        if not outcome.ok:
            return _error(422, f"{outcome.error[0]}: {outcome.error[1]}")
        c = outcome.counts
        return Response(outcome.output, media_type="application/xml", headers={
            "X-Kiwi-Counts": f"entities={c.entities}; modifiers={c.modifiers}; relations={c.relations}"})

    async def get_info(request: Request) -> Response:
        return JSONResponse(info() | {"typesystem": "org.clinicalnlp.kiwi.type (GET /api/typesystem)",
                                      "task": config.annotator.task})

    async def typesystem(request: Request) -> Response:
        return Response(KIWI_TYPESYSTEM_PATH.read_bytes(), media_type="application/xml")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "queued": state["batcher"].queue.qsize()})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["pool"] = await asyncio.get_running_loop().run_in_executor(None, AnnotatorPool, config.annotator)
        state["batcher"] = Batcher(state["pool"], config.read, config)
        state["batcher"].start()
        yield
        await state["batcher"].stop()

    routes = [Route("/api/info", get_info), Route("/api/health", health), Route("/api/typesystem", typesystem),
              Route("/api/process", medcat_route(bulk=False), methods=["POST"]),
              Route("/api/process_bulk", medcat_route(bulk=True), methods=["POST"]),
              Route("/api/xmi", xmi, methods=["POST"])]
    app = Starlette(routes=routes, lifespan=lifespan)
    return _Guard(app, config.token)


def _xmi_config(base: AnnotatorConfig, params) -> AnnotatorConfig:
    """``/api/xmi?task=re&ctakes=true&entities-from=ctakes``: the CLI's annotation options, per request,
    checked by :class:`AnnotatorConfig` itself (values and combinations)."""
    changes: dict = {}
    if "task" in params:
        changes["task"] = params["task"]
    if "ctakes" in params:
        changes["ctakes"] = params["ctakes"].lower() in ("1", "true", "yes")
    if "entities-from" in params:
        changes["entities_from"] = params["entities-from"]
    try:
        return dataclasses.replace(base, **changes)
    except UsageError as exc:
        raise ValueError(str(exc)) from None


class _Guard:
    """ASGI wrapper: bearer token on every route but health; any unexpected error becomes a bare 500."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.token and scope["path"] != "/api/health":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(auth, f"Bearer {self.token}"):
                await PlainTextResponse("missing or wrong bearer token\n", status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if scope["type"] != "http":
                raise
            log.error("request failed: %s", type(exc).__name__)  # never the message: it may quote the note
            try:
                await PlainTextResponse("internal error\n", status_code=500)(scope, receive, send)
            except Exception:
                pass
