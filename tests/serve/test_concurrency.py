"""No lost events: the stores' compare-and-set writes, trackers racing on one session, and
``gru4rec serve --workers 2`` taking interleaved events of the same sessions.

Without compare-and-set, two workers that read the same session state and both write their
step back keep only the last write: the other click is lost without an error.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("redis", reason="the serve extra is not installed")

import redis  # noqa: E402

from gru4rec.inference import SessionTracker, replay  # noqa: E402
from gru4rec.serve.store import RedisStore, decode_state, encode_state  # noqa: E402
from gru4rec.session_store import MemoryStore, SessionState, SessionStore  # noqa: E402


def _state(length: int, version: int | None) -> SessionState:
    return SessionState(np.full(3, length, dtype=np.float32), np.arange(length), length, 0.0,
                        "m", version)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[SessionStore]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        srv = request.getfixturevalue("redis_server")
        yield RedisStore(srv.url, ttl=60, prefix="t:")


def test_writes_are_compare_and_set_on_the_version_read(store: SessionStore) -> None:
    first = _state(1, 0)  # version 0: write only if the session is not stored
    assert store.put_many({"a": first}) == [] and first.version
    assert store.put_many({"a": _state(9, 0)}) == ["a"]  # it is stored now: refused
    mine, theirs = store.get_many(["a"])[0], store.get_many(["a"])[0]
    assert mine.version == theirs.version == first.version and mine.length == 1
    mine.length, theirs.length = 2, 3
    assert store.put_many({"a": theirs, "b": _state(1, 0)}) == []
    assert store.put_many({"a": mine, "c": _state(1, 0)}) == ["a"]  # a stale read loses...
    back = store.get_many(["a", "b", "c"])
    assert [s.length for s in back] == [3, 1, 1]  # ...and the other writes of its batch land
    assert store.put_many({"a": _state(7, None)}) == []  # None: unconditional
    assert store.get_many(["a"])[0].length == 7


def test_a_deleted_and_recreated_session_never_matches_an_old_read(
        store: SessionStore) -> None:
    store.put_many({"a": _state(1, 0)})
    old = store.get_many(["a"])[0]
    assert store.delete("a")
    assert store.put_many({"a": old}) == ["a"]  # deleted since it was read
    store.put_many({"a": _state(1, 0)})
    assert store.put_many({"a": old}) == ["a"]  # re-created: another version
    assert store.get_many(["a"])[0].version != old.version


def test_redis_reads_records_of_the_previous_format_and_drops_unreadable_ones(
        redis_server) -> None:
    client = redis.Redis(port=redis_server.port)
    store = RedisStore(redis_server.url, ttl=60, prefix="t:")
    new = encode_state(_state(4, None), version=77)
    old = b"G4S2" + new[12:]  # the previous format: the same record without the version
    client.set("t:old", old)
    client.set("t:bad", new[:-3])  # a damaged record
    got_old, got_bad = store.get_many(["old", "bad"])
    assert got_old.length == 4 and got_old.version == 0 and got_bad is None
    assert not client.exists("t:bad")  # else no compare-and-set on it could ever succeed
    got_old.length = 5
    assert store.put_many({"old": got_old}) == [] and decode_state(client.get("t:old")).length == 5


class _RaceOnce:
    """A store that, before the first write of ``tracker_a``, lets ``other`` run: the classic
    lost update (both read the same state, both write)."""

    def __init__(self, inner: SessionStore, other: Callable[[], object] | None) -> None:
        self.inner, self.other, self.kind, self.writes = inner, other, inner.kind, 0

    def get_many(self, ids):  # noqa: ANN001, ANN201
        return self.inner.get_many(ids)

    def put_many(self, states):  # noqa: ANN001, ANN201
        self.writes += 1
        if self.other is not None:
            other, self.other = self.other, None
            other()
        return self.inner.put_many(states)

    def delete(self, sid):  # noqa: ANN001, ANN201
        return self.inner.delete(sid)


def test_two_trackers_racing_on_a_session_keep_both_events(store: SessionStore,
                                                           make_model) -> None:
    model = make_model(40, layers=(12, 10))
    b = model.session_tracker(store)
    race = _RaceOnce(store, None)
    a = model.session_tracker(race)
    a.step(["s"], [101])  # starts s
    race.other = lambda: b.step(["s", "t"], [107, 111])
    out = a.step(["s", "t"], [102, 130])  # b's events land first, between a's read and write
    assert race.writes == 3  # a's batch was written twice: the retry after the conflict
    assert out.lengths.tolist() == [3, 2]
    st, tt = store.get_many(["s", "t"])
    assert st.items.tolist() == [101, 107, 102] and tt.items.tolist() == [111, 130]
    want = replay(model.net_, [model.item_index_.lookup(np.array(x)) for x in
                               ([101, 107, 102], [111, 130])])
    flat = torch.cat(want, dim=1).numpy()
    np.testing.assert_allclose(st.hidden, flat[0], atol=1e-5)
    np.testing.assert_allclose(tt.hidden, flat[1], atol=1e-5)
    # the answer of a's retried event is that of the whole session
    ref = model.recommend([[101, 107, 102]], 5)
    fresh = model.session_tracker(MemoryStore())
    for item in (101, 107):
        fresh.step(["x"], [item])
    assert fresh.step(["x"], [102], 5).items.tolist() == ref.items.tolist()


def test_a_session_changed_by_others_on_every_try_is_a_store_error(make_model) -> None:
    from gru4rec.errors import StoreUnavailableError

    model = make_model(20, layers=(8,))

    class Busy(MemoryStore):
        def put_many(self, states):  # noqa: ANN001, ANN201
            return list(states)  # someone else always wrote first

    tracker: SessionTracker = model.session_tracker(Busy())
    with pytest.raises(StoreUnavailableError, match="changed by other writers 50 times"):
        tracker.step(["s"], [101])


# ------------------------------------------------------------- two workers, one Redis

N_SESSIONS, PER_SESSION, N_CONNS = 10, 1000, 16


async def _connect_to_both_workers(port: int) -> list[tuple[asyncio.StreamReader,
                                                           asyncio.StreamWriter]]:
    """``N_CONNS`` keep-alive connections, half of them served by each worker (a worker is
    told by its model's ``loaded_at``, which differs between the processes)."""
    by_worker: dict[bytes, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
    for _ in range(500):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/model HTTP/1.1\r\nHost: t\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        size = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        worker = (await reader.readexactly(size)).split(b'"loaded_at":')[1][:20]
        conns = by_worker.setdefault(worker, [])
        if len(conns) < N_CONNS // 2:
            conns.append((reader, writer))
        else:
            writer.close()
        if len(by_worker) == 2 and all(len(c) == N_CONNS // 2 for c in by_worker.values()):
            return [c for cs in by_worker.values() for c in cs]
    raise AssertionError(f"connections reached {len(by_worker)} worker(s) only")


async def _post_all(port: int, requests: list[tuple[str, int]]) -> list[tuple[str, int, int,
                                                                             int]]:
    """Send every (session, item) event over ``N_CONNS`` keep-alive connections at once, half
    of them to each worker -> (session, item, status, reported length) per event."""
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    out: list[tuple[str, int, int, int]] = []

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not queue.empty():
            sid, item = queue.get_nowait()
            body = b'{"item_id": %d, "k": 3}' % item
            writer.write(b"POST /v1/sessions/%s/events HTTP/1.1\r\nHost: t\r\nContent-Type: "
                         b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (sid.encode(), len(body), body))
            head = await reader.readuntil(b"\r\n\r\n")
            size = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            reply = await reader.readexactly(size)
            length = int(reply.split(b'"length":')[1].split(b",")[0]) if head[9:12] == \
                b"200" else -1
            out.append((sid, item, int(head[9:12]), length))
        writer.close()

    conns = await _connect_to_both_workers(port)
    await asyncio.gather(*(send(r, w) for r, w in conns))
    return out


@pytest.mark.slow
def test_two_workers_lose_no_event_of_interleaved_sessions(redis_server, make_model, serve_cli,
                                                          tmp_path: Path) -> None:
    model = make_model(500, layers=(16,))
    path = tmp_path / "m.pt"
    model.save(path)
    rng = random.Random(0)
    sent = {f"s{s}": [rng.randrange(100, 600) for _ in range(PER_SESSION)]
            for s in range(N_SESSIONS)}
    requests = [(sid, item) for sid, items in sent.items() for item in items]
    rng.shuffle(requests)  # the events of every session spread over all connections
    port = serve_cli(path, "--workers", "2", "--redis-url", redis_server.url,
                     "--max-session-length", str(PER_SESSION))
    results = asyncio.run(_post_all(port, requests))
    client = redis.Redis(port=redis_server.port)
    workers = {c["name"] for c in client.client_list() if c["name"].startswith("gru4rec")}
    assert len(results) == len(requests) == N_SESSIONS * PER_SESSION >= 10_000
    assert Counter(r[2] for r in results) == {200: len(requests)}
    assert len(workers) == 2  # both workers took events (each names its connections)
    stored = {sid: decode_state(client.get(f"gru4rec:s:{sid}")) for sid in sent}
    seqs = []
    for sid, items in sent.items():
        st = stored[sid]
        assert st.length == PER_SESSION  # nothing lost
        assert Counter(st.items.tolist()) == Counter(items)  # every event, once
        # each event was applied at its own position of the session: lengths 1..N, once each
        assert sorted(r[3] for r in results if r[0] == sid) == list(range(1, PER_SESSION + 1))
        seqs.append(model.item_index_.lookup(st.items))
    print(f"{len(results)} events of {N_SESSIONS} sessions over {N_CONNS} connections to 2 "
          f"workers: {sum(st.length for st in stored.values())} applied, "
          f"{len(results) - sum(st.length for st in stored.values())} lost")
    flat = torch.cat(replay(model.net_, seqs), dim=1).numpy()
    for row, sid in enumerate(sent):  # the state is that of a sequential replay, in order
        np.testing.assert_allclose(stored[sid].hidden, flat[row], atol=1e-4)
