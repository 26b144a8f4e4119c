"""The HTTP service with the in-process store: every endpoint, every error status and
limits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("httpx", reason="httpx (dev extra) is needed by FastAPI's TestClient")

from fastapi.testclient import TestClient  # noqa: E402

from gru4rec.errors import StoreUnavailableError  # noqa: E402
from gru4rec.serve.app import create_app  # noqa: E402
from gru4rec.serve.settings import ServeSettings  # noqa: E402

SETTINGS = ServeSettings(max_k=10, default_k=5, max_session_length=5, max_body_bytes=2000)


@pytest.fixture(scope="module")
def model(make_model):
    return make_model(30, layers=(12, 10))


@pytest.fixture
def client(model) -> Iterator[TestClient]:
    with TestClient(create_app(model, SETTINGS)) as c:
        yield c


def event(c: TestClient, sid: str, item: object, **extra: object):
    return c.post(f"/v1/sessions/{sid}/events", json={"item_id": item, **extra})


def assert_error(resp, status: int, code: str, text: str = "") -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert text in body["error"]["message"]


def test_stateful_stepping_equals_stateless_recommend(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    for s in range(6):
        items = [int(x) for x in rng.integers(100, 130, 4)]
        for n, item in enumerate(items, 1):
            out = event(client, f"s-{s}", item, k=10).json()
            assert out["length"] == n and out["session_id"] == f"s-{s}"
            want = client.post("/v1/recommend", json={"items": items[:n], "k": 10}).json()
            assert out["items"] == want["items"]
            np.testing.assert_allclose(out["scores"], want["scores"], atol=1e-5)


def test_event_response_and_session_lifecycle(client: TestClient) -> None:
    out = event(client, "a.b:c_1-2", 101).json()
    assert len(out["items"]) == 5 and not out["unknown_item"]  # default k
    event(client, "a.b:c_1-2", "102")  # "102" is item 102 of this int-id model
    info = client.get("/v1/sessions/a.b:c_1-2").json()
    assert info["length"] == 2 and info["items"] == [101, 102] and info["last_seen"] > 0
    assert client.delete("/v1/sessions/a.b:c_1-2").status_code == 204
    assert_error(client.get("/v1/sessions/a.b:c_1-2"), 404, "session_not_found", "a.b:c_1-2")
    assert_error(client.delete("/v1/sessions/a.b:c_1-2"), 404, "session_not_found")
    assert event(client, "a.b:c_1-2", 103).json()["length"] == 1  # its next click: a new one
    assert client.get("/v1/sessions/a.b:c_1-2").json()["items"] == [103]


def test_unknown_item_does_not_advance(client: TestClient) -> None:
    first = event(client, "u", 101).json()
    for unknown in (999, "0101", "x"):
        out = event(client, "u", unknown).json()
        assert out["unknown_item"] and out["length"] == 1 and out["items"] == first["items"]


def test_session_keeps_only_the_recent_items(client: TestClient) -> None:
    for item in range(100, 107):
        out = event(client, "long", item).json()
    assert out["length"] == 7
    assert client.get("/v1/sessions/long").json()["items"] == list(range(102, 107))


def test_exclude_seen_drops_minus_inf_entries(bias_model) -> None:
    with TestClient(create_app(bias_model(), SETTINGS)) as c:
        event(c, "x", "i0")
        out = event(c, "x", "i2", k=6, exclude_seen=True).json()
        assert out["items"] == ["i1", "i3", "i4", "i5"] and out["scores"] == [5, 3, 2, 1]
        assert event(c, "y", 5).json()["unknown_item"]  # 5 -> "5": not an item here


def test_recommend_options(bias_model) -> None:
    with TestClient(create_app(bias_model(), SETTINGS)) as c:
        out = c.post("/v1/recommend", json={"items": ["i0", "zz"], "k": 3, "exclude_seen": True,
                                            "candidates": ["i0", "i4", "i5", "i1"],
                                            "exclude": ["i5"]}).json()
        assert out == {"items": ["i1", "i4"], "scores": [5.0, 2.0], "unknown": 1}


def test_str_id_model_accepts_int_ids(make_model) -> None:
    m = make_model(5, layers=(4,), ids=["a", "5", "c", "d", "e"])
    with TestClient(create_app(m, SETTINGS)) as c:
        assert not event(c, "s", 5).json()["unknown_item"]
        assert c.get("/v1/sessions/s").json()["items"] == ["5"]


def test_model_info_health_and_docs(model, tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    model.save(path)
    with TestClient(create_app(path, SETTINGS)) as c:
        info = c.get("/v1/model").json()
        assert info["n_items"] == 30 and info["layers"] == [12, 10]
        assert info["loss"] == "cross-entropy" and info["config"]["layers"] == [12, 10]
        assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert info["store"] == "memory"
        assert c.get("/health").json() == {"status": "ok", "store": "memory",
                                           "store_reachable": True, "sessions": 0}
        event(c, "s1", 101)
        event(c, "s2", 102)
        assert c.get("/health").json()["sessions"] == 2
        assert c.get("/docs").status_code == 200
        assert "/v1/sessions/{session_id}/events" in c.get("/openapi.json").json()["paths"]


def test_memory_store_does_not_survive_a_restart(model) -> None:
    with TestClient(create_app(model, SETTINGS)) as c:
        event(c, "s", 101)
    with TestClient(create_app(model, SETTINGS)) as c:
        assert c.get("/v1/sessions/s").status_code == 404


@pytest.mark.parametrize(("path", "body", "code", "text"), [
    ("/v1/sessions/a b/events", {"item_id": 1}, "validation_error", "session_id"),
    ("/v1/sessions/" + "x" * 129 + "/events", {"item_id": 1}, "validation_error", "pattern"),
    ("/v1/sessions/s/events", {"item_id": 1.5}, "validation_error", "item_id"),
    ("/v1/sessions/s/events", {"item_id": True}, "validation_error", "item_id"),
    ("/v1/sessions/s/events", {}, "validation_error", "body.item_id: Field required"),
    ("/v1/sessions/s/events", {"item_id": 1, "extra": 2}, "validation_error", "extra"),
    ("/v1/sessions/s/events", {"item_id": 101, "k": 0}, "invalid_k", "between 1 and 10"),
    ("/v1/sessions/s/events", {"item_id": 101, "k": 11}, "invalid_k", "got 11"),
    ("/v1/recommend", {"items": [1] * 6}, "session_too_long", "at most 5"),
    ("/v1/recommend", {"items": "abc"}, "validation_error", "items"),
    ("/v1/recommend", {"items": [101], "candidates": [1.5]}, "validation_error",
     "candidates"),
])
def test_bad_input_is_422(client: TestClient, path: str, body: dict, code: str,
                          text: str) -> None:
    assert_error(client.post(path, json=body), 422, code, text)


def test_malformed_json_is_422(client: TestClient) -> None:
    resp = client.post("/v1/recommend", content=b"{not json",
                       headers={"content-type": "application/json"})
    assert_error(resp, 422, "validation_error", "JSON")


def test_body_too_large_is_413(client: TestClient) -> None:
    big = {"items": [101] * 1000}
    assert_error(client.post("/v1/recommend", json=big), 413, "body_too_large", "2000 bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"items": ['
        for _ in range(500):
            yield b"101, "
        yield b"101]}"

    resp = client.post("/v1/recommend", content=chunks(),
                       headers={"content-type": "application/json"})
    assert_error(resp, 413, "body_too_large")


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.put("/v1/recommend", json={}), 405, "method_not_allowed")


def test_unexpected_error_is_a_json_500_without_internals(model, monkeypatch) -> None:
    with TestClient(create_app(model, SETTINGS), raise_server_exceptions=False) as c:
        from gru4rec.inference import SessionTracker

        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("secret internal detail")

        monkeypatch.setattr(SessionTracker, "step", boom)
        resp = event(c, "s", 101)
        assert_error(resp, 500, "internal_error", "server log")
        assert "secret" not in resp.text and "Traceback" not in resp.text


def test_store_failure_is_503(model, monkeypatch) -> None:
    from gru4rec.session_store import MemoryStore

    def down(*args: object) -> None:
        raise StoreUnavailableError("the session store (Redis at redis://h:1/0) is unavailable")

    with TestClient(create_app(model, SETTINGS)) as c:
        monkeypatch.setattr(MemoryStore, "get_many", down)
        assert_error(event(c, "s", 101), 503, "store_unavailable", "Redis at redis://h:1/0")
        monkeypatch.setattr(MemoryStore, "ping", lambda self: False)
        resp = c.get("/health")
        assert resp.status_code == 503 and resp.json()["store_reachable"] is False


def test_a_returning_users_new_session_starts_from_their_training_state() -> None:
    from gru4rec import GRU4Rec
    from gru4rec.data.synthetic import make_user_sessions

    events = make_user_sessions(40, 20, seed=4)
    model = GRU4Rec(device="cpu", layers=[8], n_epochs=1, batch_size=4, n_sample=8,
                    session_boundary="carry").fit(events)
    states = model.user_states_
    assert states is not None
    user = int(states.users.ids[0])
    item = int(model.item_index_.ids[0])
    with TestClient(create_app(model, SETTINGS)) as c:
        plain = event(c, "anonymous", item, k=10).json()
        as_user = event(c, "known", item, k=10, user_id=str(user)).json()  # text id works
        stranger = event(c, "stranger", item, k=10, user_id=10**9).json()
        later = event(c, "known", item, k=10, user_id=999).json()  # a live session goes on
    assert stranger["items"] == plain["items"]  # unknown users start from zero
    assert as_user["scores"] != plain["scores"]
    # the user's start: one GRU step from the stored state
    tracker = model.session_tracker()
    want = tracker.step(["x"], [item], k=10, users=[user])
    np.testing.assert_allclose(as_user["scores"], want.scores[0], atol=1e-5)
    assert later["length"] == 2


def test_the_session_bound_evicts_the_least_recently_used(model) -> None:
    with TestClient(create_app(model, ServeSettings(max_sessions=3))) as c:
        for s in ("s1", "s2", "s3"):
            event(c, s, 101)
        event(c, "s1", 102)  # s1 is now the most recently used
        event(c, "s4", 101)
        event(c, "s5", 101)
        assert c.get("/health").json()["sessions"] == 3
        assert [c.get(f"/v1/sessions/{s}").status_code for s in ("s1", "s2", "s3", "s4", "s5")] \
            == [200, 404, 404, 200, 200]
