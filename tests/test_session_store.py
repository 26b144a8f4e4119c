"""gru4rec.session_store: the in-process MemoryStore (least-recently-used eviction, time to
live, argument checks)."""

from __future__ import annotations

import numpy as np
import pytest

from gru4rec import ConfigError
from gru4rec.session_store import MemoryStore, SessionState


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _state(n: int = 0) -> SessionState:
    return SessionState(np.zeros(3, dtype=np.float32), np.zeros(0, dtype=np.int64), n, 0.0)


def test_memory_store_evicts_the_least_recently_used() -> None:
    store = MemoryStore(max_sessions=2, ttl=None)
    store.put_many({"a": _state(1), "b": _state(2)})
    store.get_many(["a"])  # a is now the most recently used
    store.put_many({"c": _state(3)})
    assert [s and s.length for s in store.get_many(["a", "b", "c"])] == [1, None, 3]
    assert len(store) == 2


def test_memory_store_ttl_expiry_and_refresh() -> None:
    clock = FakeClock()
    store = MemoryStore(ttl=10, clock=clock)
    store.put_many({"a": _state(1), "b": _state(2)})
    clock.now = 8
    store.put_many({"b": _state(3)})  # a write restarts the time to live
    clock.now = 10
    assert store.get_many(["a", "b"])[0] is None and store.get_many(["b"])[0].length == 3
    assert not store.delete("a")
    clock.now = 18.5
    assert store.get_many(["b"]) == [None] and len(store) == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_sessions": 0}, "max_sessions must be a positive integer"),
    ({"ttl": 0}, "ttl must be a positive number"),
])
def test_memory_store_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MemoryStore(**kwargs)
