"""The FastAPI app: factory, routes, limits and the JSON error format.

Every error is ``{"error": {"code": ..., "message": ...}}``: 404 unknown session or route,
413 body too large, 422 bad input (FastAPI's validation errors reshaped), 503 session store
unavailable, 500 anything unexpected (logged server-side; the reply has no internals).

Handlers are ``async`` and call the model directly on the event loop: one request's work
(one GRU step, one scoring, a top-k) is far below a millisecond, so a thread-pool hop would
cost more than it saves, and running requests one at a time per worker also keeps the
events of one session in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gru4rec.data.sessions import ItemIndex
from gru4rec.errors import GRU4RecError, StoreUnavailableError
from gru4rec.inference import SessionTracker, coerce_ids
from gru4rec.model import GRU4Rec
from gru4rec.serve.schemas import (
    ErrorBody,
    EventIn,
    EventOut,
    Health,
    ModelInfo,
    RecommendIn,
    RecommendOut,
    SessionOut,
)
from gru4rec.serve.settings import SESSION_ID_PATTERN, ServeSettings
from gru4rec.serve.store import make_store

__all__ = ["create_app"]

log = logging.getLogger(__name__)
_SID = PathParam(pattern=SESSION_ID_PATTERN, description="Session id: 1-128 of A-Z a-z 0-9 _ . : -")
_ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorBody} for c in (404, 413, 422, 500, 503)}


class ApiError(HTTPException):
    """An HTTP error with a machine-readable code (rendered in the JSON error format)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


# what one event gets back: top-k item ids, their scores, the session length, unknown item
_EventResult = tuple[np.ndarray, np.ndarray, int, bool]


class _Batcher:
    """Micro-batching of the events endpoint: the events that arrive within one turn of the
    event loop share one tracker step. Scoring 8 rows at once costs ~5 single rows (the
    fixed costs are shared), so a busy worker serves more; an idle one adds no delay (the
    flush is the next callback of the loop). Events of one session keep their order."""

    def __init__(self, tracker: SessionTracker, max_batch: int = 64) -> None:
        self.tracker, self.max_batch = tracker, max_batch
        self._pending: list[tuple[str, Any, int, bool, asyncio.Future[_EventResult]]] = []

    async def step(self, session_id: str, item: Any, k: int,
                   exclude_seen: bool) -> _EventResult:
        """(items, scores, length, unknown) of this event, once its batch has run."""
        fut: asyncio.Future[_EventResult] = asyncio.get_running_loop().create_future()
        self._pending.append((session_id, item, k, exclude_seen, fut))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        elif len(self._pending) >= self.max_batch:
            self._flush()
        return await fut

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            res = self.tracker.step([b[0] for b in batch], [b[1] for b in batch],
                                    max(b[2] for b in batch),
                                    exclude_seen=[b[3] for b in batch])
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for *_, fut in batch:
                fut.set_exception(exc)
            return
        lengths = res.lengths
        assert lengths is not None  # SessionTracker.step always reports them
        for j, (_, _, k, _, fut) in enumerate(batch):
            fut.set_result((res.items[j, :k], res.scores[j, :k], int(lengths[j]),
                            bool(res.unknown[j])))


@dataclass
class _Service:
    """What the lifespan loads: the model, its hash, the tracker and the store."""

    model: GRU4Rec
    sha256: str
    tracker: SessionTracker
    batcher: _Batcher


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _model_sha256(model: GRU4Rec) -> str:
    """Hash of an in-memory model's weights and item ids (no file to hash)."""
    h = hashlib.sha256()
    for name in sorted(model.net_.params):
        h.update(name.encode())
        h.update(model.net_.params[name].detach().cpu().contiguous().numpy().tobytes())
    h.update(repr(model.item_index_.to_list()).encode())
    return h.hexdigest()


def _load(source: str | Path | GRU4Rec, settings: ServeSettings) -> _Service:
    torch.set_num_threads(settings.torch_threads)  # tiny requests: scale with processes
    if isinstance(source, GRU4Rec):
        model, sha = source, _model_sha256(source)
    else:
        model, sha = GRU4Rec.load(source, device="cpu"), _file_sha256(Path(source))
        model.optimizer_state_ = None  # only retraining needs it: no RAM for it per worker
    store = make_store(settings.redis_url, settings.session_ttl, settings.max_sessions, sha,
                       settings.redis_timeout)
    tracker = model.session_tracker(store, max_items=settings.max_session_length)
    log.info("serving %d items (model sha256 %s) with the %s session store",
             model.n_items, sha[:16], store.kind)
    return _Service(model, sha, tracker, _Batcher(tracker))


def create_app(model: str | Path | GRU4Rec, settings: ServeSettings | None = None) -> FastAPI:
    """The service for a model file (loaded at start-up, in the lifespan) or a model."""
    settings = settings or ServeSettings()
    holder: dict[str, _Service] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder["svc"] = _load(model, settings)
        yield
        holder.clear()

    app = FastAPI(title="gru4rec", lifespan=lifespan, responses=_ERRORS,
                  description="Session-based next-item recommendations with GRU4Rec.")
    _add_error_handlers(app)
    _add_routes(app, holder, settings)
    app.add_middleware(_Guard, max_body=settings.max_body_bytes)
    return app


def _k(k: int | None, settings: ServeSettings) -> int:
    k = settings.default_k if k is None else k
    if not 1 <= k <= settings.max_k:
        raise ApiError(422, "invalid_k", f"k must be between 1 and {settings.max_k}, got {k}")
    return k


def _lists(items: np.ndarray, scores: np.ndarray) -> tuple[list[Any], list[float]]:
    keep = scores > -np.inf  # -inf entries (exclude_seen ran out of items) are not results
    return items[keep].tolist(), scores[keep].tolist()


def _add_routes(app: FastAPI, holder: dict[str, _Service], settings: ServeSettings) -> None:
    @app.post("/v1/sessions/{session_id}/events", response_model=EventOut)
    async def post_event(body: EventIn, session_id: str = _SID) -> Response:
        """Advance a live session by one click and return its next items."""
        svc = holder["svc"]
        k = _k(body.k, settings)
        item = coerce_ids(svc.model.item_index_, [body.item_id])[0]
        top, scores, length, unknown = await svc.batcher.step(session_id, item, k,
                                                               body.exclude_seen)
        items, score_list = _lists(top, scores)
        return _json({"session_id": session_id, "items": items, "scores": score_list,
                      "length": length, "unknown_item": unknown})

    @app.post("/v1/recommend", response_model=RecommendOut)
    async def recommend(body: RecommendIn) -> Response:
        """Top-k for a whole session, without keeping state."""
        svc = holder["svc"]
        k = _k(body.k, settings)
        if len(body.items) > settings.max_session_length:
            raise ApiError(422, "session_too_long", f"items holds {len(body.items)} ids; at "
                           f"most {settings.max_session_length} are accepted")
        index = svc.model.item_index_
        res = svc.model.recommend([coerce_ids(index, body.items)], k,
                                  exclude_seen=body.exclude_seen,
                                  candidates=_optional_ids(index, body.candidates),
                                  exclude=_optional_ids(index, body.exclude))
        items, scores = _lists(res.items[0], res.scores[0])
        return _json({"items": items, "scores": scores, "unknown": int(res.unknown[0])})

    @app.get("/v1/sessions/{session_id}", response_model=SessionOut)
    async def get_session(session_id: str = _SID) -> Response:
        """A live session's length, recent items and last event time."""
        info = holder["svc"].tracker.get(session_id)
        if info is None:
            raise _not_found(session_id)
        return _json({"session_id": info.session_id, "length": info.length,
                      "items": info.items, "last_seen": info.last_access})

    @app.delete("/v1/sessions/{session_id}", status_code=204)
    async def delete_session(session_id: str = _SID) -> Response:
        """Forget a live session."""
        if not holder["svc"].tracker.delete(session_id):
            raise _not_found(session_id)
        return Response(status_code=204)

    @app.get("/v1/model", response_model=ModelInfo)
    async def model_info() -> Response:
        """The served model: items, layers, loss, training config, file hash, store kind."""
        svc = holder["svc"]
        cfg = svc.model.config
        return _json({"n_items": svc.model.n_items, "layers": list(cfg.layers),
                      "loss": cfg.loss, "config": cfg.to_dict(), "sha256": svc.sha256,
                      "store": svc.tracker.store.kind})

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Response:
        """200 when the session store answers, else 503 (same body)."""
        store = holder["svc"].tracker.store
        ok = bool(getattr(store, "ping", lambda: True)())
        return _json({"status": "ok" if ok else "degraded", "store": store.kind,
                      "store_reachable": ok}, 200 if ok else 503)


def _optional_ids(index: ItemIndex, ids: list[Any] | None) -> list[Any] | None:
    """:func:`coerce_ids` of an optional id list (``None`` stays ``None``)."""
    return None if ids is None else coerce_ids(index, ids)


def _not_found(session_id: str) -> ApiError:
    return ApiError(404, "session_not_found", f"no live session {session_id!r} (never "
                    "started, expired after the session TTL, or deleted)")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                 for e in exc.errors()]
        return _error(422, "validation_error", "; ".join(parts)[:2000] or "invalid request")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(StoreUnavailableError)
    async def store_down(_: Request, exc: StoreUnavailableError) -> Response:
        log.error("%s", exc)
        return _error(503, "store_unavailable", str(exc))

    @app.exception_handler(GRU4RecError)
    async def bad_input(_: Request, exc: GRU4RecError) -> Response:
        return _error(422, "invalid_request", str(exc))


_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
          413: "body_too_large"}


class _TooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"request body over {limit} bytes")


class _Guard:
    """ASGI middleware: 413 for bodies over the limit (by Content-Length, or counted while
    streaming) and a JSON 500 for any unexpected exception (logged with its traceback)."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            bad = not length.isdigit()
            resp = _error(400 if bad else 413, "bad_request" if bad else "body_too_large",
                          "invalid Content-Length" if bad else
                          f"request body over {self.max_body} bytes")
            await resp(scope, receive, send)
            return
        started, seen = False, 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise _TooLarge(self.max_body)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                resp = _error(500, "internal_error", "internal server error; the details are "
                              "in the server log")
                await resp(scope, receive, send)


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes: model path and settings from the
    ``GRU4REC_SERVE_SETTINGS`` environment variable (set by ``gru4rec serve``)."""
    import json
    import os

    spec = json.loads(os.environ["GRU4REC_SERVE_SETTINGS"])
    return create_app(spec["model"], ServeSettings(**spec["settings"]))
