"""The FastAPI app: factory, routes, limits and the JSON error format.

Every error is ``{"error": {"code": ..., "message": ...}}``: 400 a request that cannot be
parsed (a body that is not UTF-8, a bad Content-Length), 401/403 admin route without the
token or with reloading off, 404 unknown session or route, 405 method not allowed (with an
``Allow`` header listing the path's methods), 409 nothing to reload, 413 body too large, 422
bad input (FastAPI's validation errors reshaped; a ``k`` or ``items`` over the limits) or a
model file that cannot be reloaded, 503 session store unavailable, 500 anything unexpected
(logged server-side; the reply has no internals). The OpenAPI schema declares each
operation's statuses and headers (405 answers the methods it does not list) and this
service's limits (``k`` in 1..max_k, at most max_session_length ``items``), so a request the
schema allows is one the service accepts. Answers computed by a model carry its tag in
``X-Gru4rec-Model``.

Handlers are ``async``. The events endpoint's batches run in one model thread (one batch at a
time, so the events of one session stay in order) while the event loop goes on reading,
parsing and answering requests: on a burst of events that takes their HTTP work off the
model's critical path. The other routes call the model directly on the event loop: their
work is far below a millisecond, less than a thread hop would add.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Sized
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from fastapi import FastAPI, Header, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gru4rec.data.sessions import ItemIndex
from gru4rec.errors import GRU4RecError, ModelFileError, StoreUnavailableError
from gru4rec.inference import coerce_ids
from gru4rec.model import GRU4Rec
from gru4rec.serve.reload import ModelSlot
from gru4rec.serve.schemas import (
    ErrorBody,
    EventIn,
    EventOut,
    Health,
    ModelInfo,
    RecommendIn,
    RecommendOut,
    ReloadOut,
    SessionOut,
)
from gru4rec.serve.settings import SESSION_ID_PATTERN, ServeSettings
from gru4rec.serve.store import make_store

__all__ = ["MODEL_HEADER", "create_app"]

log = logging.getLogger(__name__)
_SID = PathParam(pattern=SESSION_ID_PATTERN, description="Session id: 1-128 of A-Z a-z 0-9 _ . : -")
_ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorBody} for c in (400, 404, 413, 422, 500, 503)}
_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "headers": {"WWW-Authenticate": {
        "description": "The scheme to use: Bearer.", "required": True,
        "schema": {"type": "string"}}}},
    403: {"model": ErrorBody}, 409: {"model": ErrorBody}}
MODEL_HEADER = "X-Gru4rec-Model"  # first 16 hex digits of the answering model's sha256
_TAGGED: dict[str, Any] = {"headers": {MODEL_HEADER: {
    "description": "First 16 hex digits of the answering model's sha256.", "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}}}
# OpenAPI links: where an event's answer leads (clients and fuzzers follow them)
_SESSION_LINKS = {
    name: {"operationRef": f"#/paths/~1v1~1sessions~1{{session_id}}{tail}",
           "parameters": {"session_id": "$response.body#/session_id"}, "description": text}
    for name, tail, text in (("GetSession", "/get", "The session this event advanced."),
                             ("DeleteSession", "/delete", "Forget this session."),
                             ("NextEvent", "~1events/post", "The session's next click."))}


class ApiError(HTTPException):
    """An HTTP error with a machine-readable code (rendered in the JSON error format)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers)
        self.code = code


def _json(obj: Any, status: int = 200, model: str | None = None) -> Response:
    headers = None if model is None else {MODEL_HEADER: model}
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json",
                    headers=headers)


def _check_token(authorization: str | None, token: str | None) -> None:
    """Raises 403 when reloading over HTTP is off, 401 without the right bearer token."""
    if token is None:
        raise ApiError(403, "reload_disabled", "reloading over HTTP is off: start the service "
                       "with --admin-token-file FILE or GRU4REC_ADMIN_TOKEN set")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise ApiError(401, "unauthorized", "give the admin token as 'Authorization: Bearer "
                       "<token>'", {"WWW-Authenticate": "Bearer"})


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


def create_app(model: str | Path | GRU4Rec, settings: ServeSettings | None = None) -> FastAPI:
    """The service for a model file (loaded at start-up, in the lifespan; reloadable) or an
    in-memory model. The lifespan's :class:`ModelSlot` is ``app.state.slot`` while it runs."""
    settings = settings or ServeSettings()
    holder: dict[str, ModelSlot] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.torch_threads)  # tiny requests: scale with processes
        store = make_store(settings.redis_url, settings.session_ttl, settings.max_sessions,
                           settings.redis_timeout)
        # the model thread of the events endpoint (thread counts are per thread: set its own)
        executor = ThreadPoolExecutor(1, thread_name_prefix="gru4rec-model",
                                      initializer=torch.set_num_threads,
                                      initargs=(settings.torch_threads,))
        slot = holder["slot"] = app.state.slot = ModelSlot(model, settings, store, executor)
        # the ~300,000 objects of the libraries and the model never die: without this, every
        # full collection walked them all, a 100 ms stall (p99 of a soak 49 -> 15 ms)
        gc.collect()
        gc.freeze()
        hup = slot.install_sighup()
        watcher = (asyncio.create_task(slot.watch(settings.watch))
                   if settings.watch and slot.path is not None else None)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            if hup:
                slot.remove_sighup()
            holder.clear()
            executor.shutdown(wait=True, cancel_futures=True)
            gc.unfreeze()  # what died meanwhile (e.g. an app embedded in tests) can go

    app = FastAPI(title="gru4rec", lifespan=lifespan, responses=_ERRORS,
                  description="Session-based next-item recommendations with GRU4Rec.")
    _add_error_handlers(app)
    _add_routes(app, holder, settings)
    app.openapi = _openapi_with_limits(app, settings)  # type: ignore[method-assign]
    app.add_middleware(_Guard, max_body=settings.max_body_bytes)
    return app


def _openapi_with_limits(app: FastAPI, settings: ServeSettings) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` plus this service's limits in the request schemas: a request the schema
    allows is one the service accepts (the checks themselves stay in the routes)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = plain()  # cached by FastAPI after the first call
        if fresh:
            bodies = schema["components"]["schemas"]
            for name in ("EventIn", "RecommendIn"):
                k = bodies[name]["properties"]["k"]
                for branch in k.get("anyOf", [k]):
                    if branch.get("type") == "integer":
                        branch.update(minimum=1, maximum=settings.max_k)
            bodies["RecommendIn"]["properties"]["items"]["maxItems"] = \
                settings.max_session_length
        return schema

    return openapi


def _k(k: int | None, settings: ServeSettings) -> int:
    k = settings.default_k if k is None else k
    if not 1 <= k <= settings.max_k:
        raise ApiError(422, "invalid_k", f"k must be between 1 and {settings.max_k}, got {k}")
    return k


def _lists(items: np.ndarray, scores: np.ndarray) -> tuple[list[Any], list[float]]:
    keep = scores > -np.inf  # -inf entries (exclude_seen ran out of items) are not results
    return items[keep].tolist(), scores[keep].tolist()


def _add_routes(app: FastAPI, holder: dict[str, ModelSlot], settings: ServeSettings) -> None:
    @app.post("/v1/sessions/{session_id}/events", response_model=EventOut,
              responses={200: {**_TAGGED, "links": _SESSION_LINKS}})
    async def post_event(body: EventIn, session_id: str = _SID) -> Response:
        """Advance a live session by one click and return its next items."""
        svc = holder["slot"].current  # the whole request stays on this model
        k = _k(body.k, settings)
        item = coerce_ids(svc.model.item_index_, [body.item_id])[0]
        users = svc.model.user_states_
        user = None if body.user_id is None or users is None else \
            coerce_ids(users.users, [body.user_id])[0]
        top, scores, length, unknown = await svc.batcher.step(session_id, item, k,
                                                               body.exclude_seen, user)
        items, score_list = _lists(top, scores)
        return _json({"session_id": session_id, "items": items, "scores": score_list,
                      "length": length, "unknown_item": unknown}, model=svc.tag)

    @app.post("/v1/recommend", response_model=RecommendOut, responses={200: _TAGGED})
    async def recommend(body: RecommendIn) -> Response:
        """Top-k for a whole session, without keeping state."""
        svc = holder["slot"].current
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
        return _json({"items": items, "scores": scores, "unknown": int(res.unknown[0])},
                     model=svc.tag)

    @app.get("/v1/sessions/{session_id}", response_model=SessionOut)
    async def get_session(session_id: str = _SID) -> Response:
        """A live session's length, recent items and last event time."""
        info = holder["slot"].current.tracker.get(session_id)
        if info is None:
            raise _not_found(session_id)
        return _json({"session_id": info.session_id, "length": info.length,
                      "items": info.items, "last_seen": info.last_access})

    @app.delete("/v1/sessions/{session_id}", status_code=204)
    async def delete_session(session_id: str = _SID) -> Response:
        """Forget a live session."""
        if not holder["slot"].current.tracker.delete(session_id):
            raise _not_found(session_id)
        return Response(status_code=204)

    @app.get("/v1/model", response_model=ModelInfo, responses={200: _TAGGED})
    async def model_info() -> Response:
        """The model that answers: items, layers, loss, training config, file hash, source,
        when it was loaded, how many reloads this worker made, and the store kind."""
        slot = holder["slot"]
        svc = slot.current
        cfg = svc.model.config
        return _json({"n_items": svc.model.n_items, "layers": list(cfg.layers),
                      "loss": cfg.loss, "config": cfg.to_dict(), "sha256": svc.sha256,
                      "source": slot.source, "loaded_at": svc.loaded_at,
                      "reloads": slot.reloads, "store": slot.store.kind}, model=svc.tag)

    @app.post("/v1/admin/reload", response_model=ReloadOut, responses=_ADMIN_ERRORS)
    async def reload_model(authorization: str | None = Header(None)) -> Response:
        """Serve the model file again, as it is now on disk, without downtime (with several
        workers: this one, then the others a moment later); needs ``Authorization: Bearer
        <token>`` with the token the service was started with."""
        _check_token(authorization, settings.admin_token)
        slot = holder["slot"]
        try:
            res = await slot.reload("POST /v1/admin/reload", all_workers=True)
        except ModelFileError as exc:
            raise ApiError(422 if slot.path is not None else 409, "reload_failed",
                           f"{exc}; the current model keeps answering") from None
        return _json({"status": res.status, "sha256": res.sha256,
                      "previous_sha256": res.previous_sha256})

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Response:
        """200 when the session store answers, else 503 (same body); the live session count
        of the in-process store."""
        store = holder["slot"].store
        ok = bool(getattr(store, "ping", lambda: True)())
        sessions = len(store) if isinstance(store, Sized) else None
        return _json({"status": "ok" if ok else "degraded", "store": store.kind,
                      "store_reachable": ok, "sessions": sessions}, 200 if ok else 503)


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
    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "http_error")
        resp = _error(exc.status_code, code, str(exc.detail))
        resp.headers.update(exc.headers or {})
        if exc.status_code == 405:  # RFC 9110: a 405 lists what the path supports
            resp.headers["Allow"] = _allowed_methods(request)
        return resp

    @app.exception_handler(StoreUnavailableError)
    async def store_down(_: Request, exc: StoreUnavailableError) -> Response:
        log.error("%s", exc)
        return _error(503, "store_unavailable", str(exc))

    @app.exception_handler(GRU4RecError)
    async def bad_input(_: Request, exc: GRU4RecError) -> Response:
        return _error(422, "invalid_request", str(exc))


def _allowed_methods(request: Request) -> str:
    """The methods of every route on the request's path: Starlette's own 405 names only the
    first route it tried (GET but not DELETE for ``/v1/sessions/{session_id}``)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] != Match.NONE:  # PARTIAL: path yes, method no
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
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
