"""The session stores of the service (gru4rec.serve.store): the state codec, URLs shown
without their password, and the Redis store through the HTTP service: restarts, TTL, keys,
and Redis going away and coming back.

The Redis tests run a real ``redis-server`` on a free localhost port; skipped when the binary
is absent, required (failing) when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("redis", reason="the serve extra is not installed")

import redis  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from gru4rec.serve.app import create_app  # noqa: E402
from gru4rec.serve.settings import ServeSettings  # noqa: E402
from gru4rec.serve.store import decode_state, encode_state, shown_url  # noqa: E402
from gru4rec.session_store import SessionState  # noqa: E402


@pytest.mark.parametrize("items", [np.array([3, -1, 2**62]), np.array(["a", "béé", "", "x y"]),
                                   np.zeros(0, dtype=np.int64), np.zeros(0, dtype=str)])
def test_state_codec_round_trips_int_and_str_ids(items: np.ndarray) -> None:
    state = SessionState(np.arange(5, dtype=np.float32), items, 7, 12.5, "0123456789abcdef")
    data = encode_state(state)
    back = decode_state(data)
    np.testing.assert_array_equal(back.hidden, state.hidden)
    assert back.items.tolist() == items.tolist() and back.items.dtype.kind == items.dtype.kind
    assert (back.length, back.last_access, back.model) == (7, 12.5, "0123456789abcdef")
    # every truncation, and any extra byte, reads as "no state" (never a wrong one)
    assert all(decode_state(data[:n]) is None for n in range(len(data)))
    assert decode_state(data + b"\0") is None


def test_state_codec_rejects_other_records_and_hides_passwords() -> None:
    state = SessionState(np.arange(5, dtype=np.float32), np.array([3, 1]), 7, 12.5)
    assert decode_state(b"junk") is None
    assert decode_state(b"G4S1" + encode_state(state)[4:]) is None  # the earlier format
    assert shown_url("redis://:pw@host:1/0") == "redis://:***@host:1/0"
    assert shown_url("redis://u:pw@host:1/0") == "redis://u:***@host:1/0"
    assert shown_url("redis://host:1/0") == "redis://host:1/0"


# ----------------------------------------------------------------------------- Redis


@pytest.fixture(scope="module")
def model_path(make_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "m.pt"
    make_model(30, layers=(12, 10)).save(path)
    return path


def settings(url: str, **kw: object) -> ServeSettings:
    return ServeSettings(redis_url=url, max_k=30, redis_timeout=0.5, **kw)


def test_state_survives_a_restart(redis_server, model_path: Path) -> None:
    items = [101, 117, 103, 101, 125]
    with TestClient(create_app(model_path, settings(redis_server.url))) as c:
        assert c.get("/v1/model").json()["store"] == "redis"
        for item in items[:3]:
            c.post("/v1/sessions/s1/events", json={"item_id": item, "k": 30})
    with TestClient(create_app(model_path, settings(redis_server.url))) as c:  # a fresh instance
        assert c.get("/v1/sessions/s1").json()["items"] == items[:3]
        for item in items[3:]:
            out = c.post("/v1/sessions/s1/events", json={"item_id": item, "k": 30}).json()
        want = c.post("/v1/recommend", json={"items": items, "k": 30}).json()
    assert out["length"] == 5 and out["items"] == want["items"]
    np.testing.assert_allclose(out["scores"], want["scores"], atol=1e-5)


def test_keys_name_the_session_records_name_the_model_and_the_ttl_is_refreshed(
        redis_server, model_path: Path) -> None:
    client = redis.Redis(port=redis_server.port)
    with TestClient(create_app(model_path, settings(redis_server.url, session_ttl=100))) as c:
        sha = c.get("/v1/model").json()["sha256"]
        c.post("/v1/sessions/s2/events", json={"item_id": 101})
        key = "gru4rec:s:s2"
        assert client.exists(key) and 0 < client.pttl(key) <= 100_000
        assert decode_state(client.get(key)).model == sha[:16]
        client.pexpire(key, 5_000)
        c.post("/v1/sessions/s2/events", json={"item_id": 102})
        assert client.pttl(key) > 5_000  # each event sets the full TTL again
        assert c.delete("/v1/sessions/s2").status_code == 204 and not client.exists(key)
        assert c.delete("/v1/sessions/s2").status_code == 404


def test_expired_session_is_gone(redis_server, model_path: Path) -> None:
    with TestClient(create_app(model_path, settings(redis_server.url, session_ttl=0.2))) as c:
        c.post("/v1/sessions/s3/events", json={"item_id": 101})
        time.sleep(0.4)
        assert c.get("/v1/sessions/s3").status_code == 404


def test_redis_down_is_503_and_the_service_recovers(redis_server,
                                                    model_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{redis_server.port}/0"
    redis.Redis(port=redis_server.port).config_set("requirepass", "hunter2")
    with TestClient(create_app(model_path, settings(url))) as c:
        assert c.post("/v1/sessions/s4/events", json={"item_id": 101}).status_code == 200
        redis_server.stop()
        resp = c.post("/v1/sessions/s4/events", json={"item_id": 102})
        assert resp.status_code == 503
        err = resp.json()["error"]
        assert err["code"] == "store_unavailable" and "Redis at redis://:***@127.0.0.1" in \
            err["message"] and "hunter2" not in resp.text
        assert c.get("/v1/sessions/s4").status_code == 503
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["store_reachable"] is False
        redis_server.start()  # same port, empty (no persistence)
        redis.Redis(port=redis_server.port).config_set("requirepass", "hunter2")
        assert c.get("/health").json()["status"] == "ok"
        out = c.post("/v1/sessions/s4/events", json={"item_id": 102}).json()
        assert out["length"] == 1  # the state was lost with the Redis data; a new session
