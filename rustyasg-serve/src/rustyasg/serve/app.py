"""The HTTP application (Starlette): predict, health, metadata and Prometheus metrics.

Routes:

- ``POST /v1/predict`` — inputs in, outputs out (see :mod:`.codecs` for the body kinds);
- ``GET /health`` — ``{"status": "ok", ...}``, or 503 ``"draining"`` while shutting down;
- ``GET /v1/metadata`` — the model's inputs, outputs and batching;
- ``GET /metrics`` — Prometheus text format.

Every refusal is a JSON ``{"error": "..."}`` with a 4xx/5xx status: 400 malformed body, 413 too
large, 415 unsupported content type, 422 wrong inputs (names, shapes, dtypes), 503 queue full or
shutting down. A failing request never stops the server.

Example::

    app = create_app(ServeConfig(model_path="model.rgp"))
    uvicorn.run(app, port=8000)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Any, Optional

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import codecs
from .batcher import Batcher, QueueFull, ShuttingDown
from .metrics import ServeMetrics
from .model import RequestError, ServedModel

log = logging.getLogger("rustyasg.serve")


@dataclasses.dataclass
class ServeConfig:
    """Settings of one server (the ``rustyasg serve`` options)."""

    model_path: str
    backend: Optional[str] = None
    max_batch: int = 32                 # rows per model call; 1 turns dynamic batching off
    max_latency_ms: float = 5.0         # how long the oldest request may wait for company
    max_queue: int = 256                # waiting requests beyond this get 503
    max_request_bytes: int = 16 << 20   # larger bodies get 413
    warmup: bool = True                 # compile every batch size before taking requests


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it passes ``limit`` bytes, with or without Content-Length."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _BodyTooLarge(int(declared))
        except ValueError:
            raise RequestError(f"Content-Length {declared!r} is not a number", 400) from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(config: ServeConfig, model: Optional[ServedModel] = None) -> Starlette:
    """The Starlette app for ``config`` (``model``: an already loaded one, for embedding and tests)."""
    metrics = ServeMetrics()
    state: dict[str, Any] = {"model": model, "batcher": None, "draining": False}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        m = state["model"]
        if m is None:
            m = state["model"] = ServedModel.load(config.model_path, config.backend, config.max_batch)
        if config.warmup:
            t0 = time.perf_counter()
            sizes = m.warmup()
            log.info("compiled batch sizes %s in %.1f s", sizes, time.perf_counter() - t0)
        batcher = Batcher(m, config.max_batch, config.max_latency_ms / 1000.0, config.max_queue,
                          on_batch=metrics.observe_batch)
        batcher.start()
        state["batcher"] = batcher
        metrics.queue_depth.set_function(lambda: batcher.depth)
        try:
            yield
        finally:
            state["draining"] = True     # uvicorn stopped accepting and finished open requests
            await batcher.close()        # anything still queued is answered before the worker stops

    async def predict(request: Request) -> Response:
        t0 = time.perf_counter()
        status = 500
        try:
            response = await _predict(request)
            status = response.status_code
            return response
        finally:
            metrics.observe_request("predict", status, time.perf_counter() - t0)

    async def _predict(request: Request) -> Response:
        m: ServedModel = state["model"]
        try:
            kind = codecs.kind_of(request.headers.get("content-type"))
            reply_kind = codecs.response_kind(request.headers.get("accept"), kind)
            body = await _read_body(request, config.max_request_bytes)
            single = m.input_specs[0].name if len(m.input_specs) == 1 else None
            arrays, rows = m.check(codecs.decode(kind, body, single))
            outputs = await state["batcher"].submit(arrays, rows)
        except RequestError as exc:
            metrics.rejected.labels(reason=str(exc.status)).inc()
            return _error(exc.status, str(exc))
        except _BodyTooLarge as exc:
            metrics.rejected.labels(reason="413").inc()
            return _error(413, f"request body of {exc.args[0]} bytes exceeds the limit of {config.max_request_bytes} "
                               "bytes (--max-request-bytes); send fewer rows or a binary body")
        except QueueFull:
            metrics.rejected.labels(reason="queue_full").inc()
            return _error(503, f"the server is busy: {config.max_queue} requests are already waiting; retry later")
        except ShuttingDown:
            return _error(503, "the server is shutting down")
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception as exc:  # a model failure: answer 500, keep serving
            log.exception("inference failed")
            return _error(500, f"inference failed: {type(exc).__name__}: {exc}")
        return Response(codecs.encode(reply_kind, outputs), media_type=reply_kind)

    async def health(request: Request) -> Response:
        if state["draining"] or state["batcher"] is None:
            return JSONResponse({"status": "draining" if state["draining"] else "starting"}, status_code=503)
        return JSONResponse({"status": "ok", "model": state["model"].name, "queue": state["batcher"].depth})

    async def metadata(request: Request) -> Response:
        return JSONResponse(state["model"].describe())

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    routes = [
        Route("/v1/predict", predict, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/v1/metadata", metadata, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.serve = state
    app.state.metrics = metrics
    return app
