"""Session stores of the service: the Redis store, the state codec, and the choice of store.

Redis keys are ``gru4rec:s:<session id>``, values are one compact binary record
(:func:`encode_state`) that names the model which computed it (a reloaded or other model
rebuilds the state from the record's item ids), and every write sets the time to live again
(the TTL counts from the last event).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from gru4rec.errors import StoreUnavailableError
from gru4rec.session_store import MemoryStore, SessionState, SessionStore

__all__ = ["RedisStore", "decode_state", "encode_state", "make_store", "shown_url"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_HEADER = struct.Struct("<4sQdIIcB")  # magic, length, last access, n hidden, n items,
#                                      item id kind (i: int64, u: utf-8), model tag length
_MAGIC = b"G4S2"


def encode_state(state: SessionState) -> bytes:
    """A state as bytes: header, model tag (ASCII), hidden (float32), then the item ids:
    int64 values, or for string ids their utf-8 byte lengths (uint32) and bytes."""
    hidden = np.ascontiguousarray(state.hidden, dtype=np.float32)
    tag = state.model.encode("ascii")[:255]
    if state.items.dtype.kind == "U":
        raw = [str(x).encode("utf-8") for x in state.items.tolist()]
        body = np.array([len(r) for r in raw], dtype="<u4").tobytes() + b"".join(raw)
        kind = b"u"
    else:
        body, kind = np.ascontiguousarray(state.items, dtype="<i8").tobytes(), b"i"
    head = _HEADER.pack(_MAGIC, state.length, state.last_access, hidden.size,
                        len(state.items), kind, len(tag))
    return head + tag + hidden.tobytes() + body


def decode_state(data: bytes) -> SessionState | None:
    """Inverse of :func:`encode_state`; ``None`` for a record it cannot read."""
    if len(data) < _HEADER.size:
        return None
    magic, length, last, n_hidden, n_items, kind, n_tag = _HEADER.unpack_from(data)
    start = _HEADER.size + n_tag + 4 * n_hidden
    if magic != _MAGIC or kind not in (b"i", b"u") or len(data) < start:
        return None
    try:
        tag = data[_HEADER.size:_HEADER.size + n_tag].decode("ascii")
        hidden = np.frombuffer(data, np.float32, n_hidden, _HEADER.size + n_tag).copy()
        if kind == b"i":
            if len(data) != start + 8 * n_items:
                return None
            items = np.frombuffer(data, "<i8", n_items, start).astype(np.int64)
        else:
            sizes = np.frombuffer(data, "<u4", n_items, start)
            ends = start + 4 * n_items + np.cumsum(sizes, dtype=np.int64)
            if len(data) != (ends[-1] if n_items else start):
                return None
            begins = ends - sizes
            items = np.array([data[b:e].decode("utf-8") for b, e in
                              zip(begins.tolist(), ends.tolist(), strict=True)], dtype=str)
    except (ValueError, UnicodeDecodeError):  # short buffers, bad utf-8 / ascii
        return None
    return SessionState(hidden, items, int(length), float(last), tag)


def shown_url(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class RedisStore:
    """Sessions in Redis: MGET to read, one pipeline of SETs (with TTL) to write.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``).
        ttl: seconds a session lives after its last write.
        prefix: key prefix, e.g. ``gru4rec:s:``.
        timeout: seconds before a call counts as failed (:class:`StoreUnavailableError`).
    """

    kind = "redis"

    def __init__(self, url: str, ttl: float, prefix: str, timeout: float = 1.0) -> None:
        import redis

        self.url, self.ttl_ms, self.prefix = shown_url(url), int(ttl * 1000), prefix
        self._errors = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_timeout=timeout,
                                            socket_connect_timeout=timeout)

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._errors as exc:
            raise StoreUnavailableError(
                f"the session store (Redis at {self.url}) is unavailable: "
                f"{' '.join(str(exc).split())[:200]}; check that Redis is running and that "
                "--redis-url is right") from None

    def get_many(self, session_ids: Sequence[str]) -> list[SessionState | None]:
        """States of ``session_ids`` (``None`` where absent, expired or unreadable)."""
        keys = [self.prefix + s for s in session_ids]
        raw: list[Any] = self._call(lambda: self._client.mget(keys))
        out = [None if r is None else decode_state(r) for r in raw]
        if any(o is None and r is not None for o, r in zip(out, raw, strict=True)):
            log.warning("unreadable session record(s) in Redis were treated as absent")
        return out

    def put_many(self, states: Mapping[str, SessionState]) -> None:
        """Write states, each with the full TTL again, in one round trip."""
        def write() -> None:
            pipe = self._client.pipeline(transaction=False)
            for sid, state in states.items():
                pipe.set(self.prefix + sid, encode_state(state), px=self.ttl_ms)
            pipe.execute()

        self._call(write)

    def delete(self, session_id: str) -> bool:
        """Remove a session; True when it existed."""
        return bool(self._call(lambda: self._client.delete(self.prefix + session_id)))

    def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(self._client.ping())
        except self._errors:
            return False


def make_store(redis_url: str | None, ttl: float, max_sessions: int,
               timeout: float = 1.0) -> SessionStore:
    """The memory store, or a Redis store with keys ``gru4rec:s:<session id>``."""
    if redis_url is None:
        return MemoryStore(max_sessions=max_sessions, ttl=ttl)
    return RedisStore(redis_url, ttl, "gru4rec:s:", timeout)
