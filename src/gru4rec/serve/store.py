"""Session stores of the service: the Redis store, the state codec, and the choice of store.

Redis keys are ``gru4rec:s:<session id>``, values are one compact binary record
(:func:`encode_state`) that names the model which computed it (a reloaded or other model
rebuilds the state from the record's item ids), and every write sets the time to live again
(the TTL counts from the last event).

Writes are compare-and-set: each record carries a version (bytes 4-12), and a Lua script
(atomic in Redis) writes a state only where the stored version is still the one that was
read. Several workers stepping the same session at once therefore never overwrite each other's
events: the loser is told, reads the new state and applies its event again.
"""

from __future__ import annotations

import logging
import os
import secrets
import struct
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from gru4rec.errors import StoreUnavailableError
from gru4rec.session_store import MemoryStore, SessionState, SessionStore

__all__ = ["RedisStore", "decode_state", "encode_state", "make_store", "shown_url"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_HEADER = struct.Struct("<4sQQdIIcB")  # magic, version, length, last access, n hidden,
#                                       n items, item id kind (i: int64, u: utf-8), tag length
_MAGIC = b"G4S3"
_OLD = struct.Struct("<4sQdIIcB")  # G4S2: the same without the version (read as version 0)
_OLD_MAGIC = b"G4S2"
_VERSION = struct.Struct("<Q")
# KEYS: session keys; ARGV[1]: TTL in ms, then per key its expected version (8 bytes; '' =
# must be absent; '*' = any) and its new record. Returns the 1-based indices not written.
_CAS = """
local bad = {}
for i, key in ipairs(KEYS) do
  local want = ARGV[2 * i]
  local cur = redis.call('GET', key)
  local have = ''
  if cur and string.sub(cur, 1, 4) == 'G4S3' then have = string.sub(cur, 5, 12) end
  if want == '*' or want == have then
    redis.call('SET', key, ARGV[2 * i + 1], 'PX', ARGV[1])
  else
    bad[#bad + 1] = i
  end
end
return bad
"""
_DROP = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"


def encode_state(state: SessionState, version: int = 0) -> bytes:
    """A state as bytes: header (with ``version``), model tag (ASCII), hidden (float32),
    then the item ids: int64 values, or for string ids their utf-8 byte lengths (uint32) and
    bytes."""
    hidden = np.ascontiguousarray(state.hidden, dtype=np.float32)
    tag = state.model.encode("ascii")[:255]
    if state.items.dtype.kind == "U":
        raw = [str(x).encode("utf-8") for x in state.items.tolist()]
        body = np.array([len(r) for r in raw], dtype="<u4").tobytes() + b"".join(raw)
        kind = b"u"
    else:
        body, kind = np.ascontiguousarray(state.items, dtype="<i8").tobytes(), b"i"
    head = _HEADER.pack(_MAGIC, version, state.length, state.last_access, hidden.size,
                        len(state.items), kind, len(tag))
    return head + tag + hidden.tobytes() + body


def decode_state(data: bytes) -> SessionState | None:
    """Inverse of :func:`encode_state` (the state's ``version`` is the record's; a record of
    the previous format, without one, reads as version 0); ``None`` for a record it cannot
    read."""
    head, version = (_HEADER, None) if data[:4] == _MAGIC else (_OLD, 0)
    if len(data) < head.size:
        return None
    if version is None:
        magic, version, length, last, n_hidden, n_items, kind, n_tag = head.unpack_from(data)
    else:
        magic, length, last, n_hidden, n_items, kind, n_tag = head.unpack_from(data)
    start = head.size + n_tag + 4 * n_hidden
    if magic not in (_MAGIC, _OLD_MAGIC) or kind not in (b"i", b"u") or len(data) < start:
        return None
    try:
        tag = data[head.size:head.size + n_tag].decode("ascii")
        hidden = np.frombuffer(data, np.float32, n_hidden, head.size + n_tag).copy()
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
    return SessionState(hidden, items, int(length), float(last), tag, int(version))


def shown_url(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class RedisStore:
    """Sessions in Redis: MGET to read, one compare-and-set script (SETs with TTL) to write.

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
        # the process id in the connection's name tells the workers apart (CLIENT LIST)
        self._client = redis.Redis.from_url(url, socket_timeout=timeout,
                                            socket_connect_timeout=timeout,
                                            client_name=f"gru4rec-{os.getpid()}")
        self._cas = self._client.register_script(_CAS)  # EVALSHA, loaded again if flushed
        self._drop = self._client.register_script(_DROP)

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._errors as exc:
            raise StoreUnavailableError(
                f"the session store (Redis at {self.url}) is unavailable: "
                f"{' '.join(str(exc).split())[:200]}; check that Redis is running and that "
                "--redis-url is right") from None

    def get_many(self, session_ids: Sequence[str]) -> list[SessionState | None]:
        """States of ``session_ids`` (``None`` where absent, expired or unreadable; an
        unreadable record is deleted, unless it changed meanwhile)."""
        keys = [self.prefix + s for s in session_ids]
        raw: list[Any] = self._call(lambda: self._client.mget(keys))
        out = [None if r is None else decode_state(r) for r in raw]
        bad = [(k, r) for k, o, r in zip(keys, out, raw, strict=True) if o is None and r]
        if bad:  # else its version would make every compare-and-set of the session fail
            for key, record in bad:
                self._call(partial(self._drop, keys=[key], args=[record]))
            log.warning("%d unreadable session record(s) in Redis were deleted", len(bad))
        return out

    def put_many(self, states: Mapping[str, SessionState]) -> list[str]:
        """Write the states whose stored version is still their ``version`` (compare-and-set
        in one atomic script, one round trip), each with the full TTL again; returns the ids
        not written (see :meth:`SessionStore.put_many`)."""
        sids = list(states)
        if not sids:
            return []
        args: list[Any] = [self.ttl_ms]
        new: list[int] = []
        for sid in sids:
            old = states[sid].version
            # a new session starts at a random version: one deleted and re-created never
            # takes a version that a reader of the old one still holds
            new.append(old + 1 if old else secrets.randbits(62) + 1)
            args += [b"*" if old is None else _VERSION.pack(old) if old else b"",
                     encode_state(states[sid], new[-1])]
        failed = self._call(lambda: self._cas(keys=[self.prefix + s for s in sids], args=args))
        lost = {int(i) - 1 for i in failed}
        for j, sid in enumerate(sids):
            if j not in lost:
                states[sid].version = new[j]
        return [sids[j] for j in sorted(lost)]

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
