"""Where live sessions keep their GRU state between events: the store protocol and the
in-process store (LRU with a size bound and a time to live).

A :class:`SessionState` is everything a session needs to continue: the hidden state of every
GRU layer, the tag of the model that computed it, the item ids it has clicked (for
``exclude_seen``, and to rebuild the state under another model), its length and when it was
last used. The Redis store of the service (``gru4rec.serve.store``) keeps the same states.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import numpy as np

from gru4rec.errors import ConfigError

__all__ = ["MemoryStore", "SessionState", "SessionStore"]


@dataclass
class SessionState:
    """The state of one live session.

    Attributes:
        hidden: (sum of the layer sizes,) float32, the hidden state of every GRU layer back
            to back (layer 0 first).
        items: (L,) ids of the items clicked, oldest first, the model's unknown ones too (a
            later model may know them): int64 for a model of integer ids, unicode for one of
            strings; possibly only the most recent ones, when the tracker caps them.
        length: number of known events applied to ``hidden`` (never capped).
        last_access: wall-clock time (``time.time()``) of the last event.
        model: tag of the model that computed ``hidden``; a tracker of another model rebuilds
            the state by replaying ``items`` (:class:`~gru4rec.inference.SessionTracker`).
        version: the store's version of this state when it was read (0: the session was not
            stored), for compare-and-set writes: :meth:`SessionStore.put_many` writes it only
            if the stored version is still this one, so that two writers that read the same
            state cannot overwrite each other's events. ``None``: write unconditionally.
    """

    hidden: np.ndarray
    items: np.ndarray
    length: int
    last_access: float
    model: str = ""
    version: int | None = None


@runtime_checkable
class SessionStore(Protocol):
    """A key-value store of session states; a missing or expired session reads as ``None``."""

    kind: str

    def get_many(self, session_ids: Sequence[str]) -> list[SessionState | None]:
        """The states of ``session_ids``, in order (``None`` where absent).

        Raises:
            StoreUnavailableError: a remote store cannot be reached (never the memory store).
        """
        ...

    def put_many(self, states: Mapping[str, SessionState]) -> list[str]:
        """Write (insert or replace) states and refresh their time to live, each one only if
        the stored version still equals its ``version`` (compare-and-set; 0: only if the
        session is not stored; ``None``: unconditionally). A written state gets its new
        version in ``version``.

        Returns:
            The session ids not written because another writer changed (or deleted) them
            since they were read: read them again, re-apply the change and retry.

        Raises:
            StoreUnavailableError: a remote store cannot be reached (never the memory store).
        """
        ...

    def delete(self, session_id: str) -> bool:
        """Remove a session; True when it existed.

        Raises:
            StoreUnavailableError: a remote store cannot be reached (never the memory store).
        """
        ...


class MemoryStore:
    """In-process store: least-recently-used eviction beyond ``max_sessions`` and a time to
    live of ``ttl`` seconds since the last write (expired entries read as absent).

    It lives in the memory of one process: it is not shared between processes and does not
    survive a restart. Thread-safe: reads return copies, and writes are compare-and-set on the
    states' versions (see :meth:`SessionStore.put_many`).

    Args:
        max_sessions: most sessions kept; the least recently used are evicted first.
        ttl: seconds a session lives after its last event; ``None`` = forever.
        clock: monotonic clock in seconds (inject a fake one in tests).

    Raises:
        ConfigError: ``max_sessions`` is not a positive integer, or ``ttl`` is neither None
            nor a positive number.

    Its methods raise nothing: an unknown or expired session reads as ``None``.
    """

    kind = "memory"

    def __init__(self, max_sessions: int = 1_000_000, ttl: float | None = 1800.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(max_sessions, int) or max_sessions < 1:
            raise ConfigError(f"max_sessions must be a positive integer, got {max_sessions!r}")
        if ttl is not None and not ttl > 0:
            raise ConfigError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
        self.max_sessions, self.ttl, self._clock = max_sessions, ttl, clock
        self._data: OrderedDict[str, tuple[float, SessionState]] = OrderedDict()
        self._lock = threading.Lock()
        self._writes = 0

    def __len__(self) -> int:
        return len(self._data)

    def get_many(self, session_ids: Sequence[str]) -> list[SessionState | None]:
        """The states of ``session_ids`` (``None`` where absent or expired); a hit counts as
        a use for the LRU order."""
        now = self._clock()
        out: list[SessionState | None] = []
        with self._lock:
            for sid in session_ids:
                entry = self._data.get(sid)
                if entry is not None and entry[0] <= now:
                    del self._data[sid]  # expired: treated as absent
                    entry = None
                if entry is not None:
                    self._data.move_to_end(sid)
                # a shallow copy: the caller's changes reach the store only through put_many
                out.append(None if entry is None else replace(entry[1]))
        return out

    def put_many(self, states: Mapping[str, SessionState]) -> list[str]:
        """Insert or replace states whose version still matches (their TTL restarts), then
        evict beyond ``max_sessions``; returns the ids not written (version conflicts)."""
        now = self._clock()
        expires = now + self.ttl if self.ttl is not None else float("inf")
        conflicts: list[str] = []
        with self._lock:
            for sid, state in states.items():
                entry = self._data.get(sid)
                stored = 0 if entry is None or entry[0] <= now else entry[1].version
                if state.version is not None and state.version != stored:
                    conflicts.append(sid)
                    continue
                self._writes += 1  # store-wide: a deleted and re-created session never
                state.version = self._writes  # gets a version an old reader still holds
                self._data[sid] = (expires, state)
                self._data.move_to_end(sid)
            while len(self._data) > self.max_sessions:
                self._data.popitem(last=False)
        return conflicts

    def delete(self, session_id: str) -> bool:
        """Remove a session; True when it existed (and had not expired)."""
        now = self._clock()
        with self._lock:
            entry = self._data.pop(session_id, None)
        return entry is not None and entry[0] > now

    def ping(self) -> bool:
        """Always reachable."""
        return True
