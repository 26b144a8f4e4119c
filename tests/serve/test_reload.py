"""Model reload in the HTTP service: in process, the admin route and its token, live sessions
kept across a swap, requests in flight finishing on the old model, bad files refused while
the old model keeps answering, and the file watcher; then running servers reloaded by SIGHUP
and by the admin route, with one worker and with two workers sharing Redis."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("httpx", reason="httpx (dev extra) is needed by FastAPI's TestClient")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from gru4rec.serve.app import MODEL_HEADER, create_app  # noqa: E402
from gru4rec.serve.settings import ServeSettings  # noqa: E402

TOKEN = "s3cret-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SETTINGS = ServeSettings(max_k=20, admin_token=TOKEN)
HISTORIES = {"a": [101, 131, 102], "b": [120, 121], "c": [105]}  # 131 is new in model B


@pytest.fixture
def files(make_model, tmp_path: Path) -> dict[str, Path]:
    """The served path (model A now), and copies of model A and of model B (35 items, other
    weights and layers, as after retraining with new items)."""
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    make_model(30, layers=(12, 10), seed=0).save(a)
    make_model(35, layers=(9,), seed=3).save(b)
    served = tmp_path / "served.pt"
    served.write_bytes(a.read_bytes())
    return {"served": served, "a": a, "b": b}


def swap_in(src: Path, dst: Path) -> None:
    """Replace ``dst`` atomically by a copy of ``src`` (as ``gru4rec run -s`` writes)."""
    tmp = dst.with_suffix(".tmp")
    tmp.write_bytes(src.read_bytes())
    os.replace(tmp, dst)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def event(c: TestClient, sid: str, item: object):
    resp = c.post(f"/v1/sessions/{sid}/events", json={"item_id": item, "k": 20})
    assert resp.status_code == 200, resp.text
    return resp


def test_the_admin_route_needs_the_token(files: dict[str, Path]) -> None:
    with TestClient(create_app(files["served"], ServeSettings())) as c:
        resp = c.post("/v1/admin/reload", headers=AUTH)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "reload_disabled"
    with TestClient(create_app(files["served"], SETTINGS)) as c:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": TOKEN}):
            resp = c.post("/v1/admin/reload", headers=headers)
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"
            assert resp.headers["www-authenticate"] == "Bearer"
        resp = c.post("/v1/admin/reload", headers=AUTH)
        assert resp.status_code == 200
        assert resp.json() == {"status": "unchanged", "sha256": sha(files["a"]),
                               "previous_sha256": sha(files["a"])}
        assert c.get("/v1/model").json()["reloads"] == 0


def test_a_reload_swaps_the_model_and_keeps_every_live_session(files: dict[str, Path]) -> None:
    with TestClient(create_app(files["served"], SETTINGS)) as c:
        info = c.get("/v1/model").json()
        assert info["sha256"] == sha(files["a"]) and info["source"] == str(files["served"])
        before = {s: [event(c, s, i).json() for i in items] for s, items in HISTORIES.items()}
        assert before["a"][-1]["length"] == 2  # 131 is unknown to model A
        swap_in(files["b"], files["served"])
        resp = c.post("/v1/admin/reload", headers=AUTH)
        assert resp.status_code == 200 and resp.json() == {
            "status": "reloaded", "sha256": sha(files["b"]), "previous_sha256": sha(files["a"])}
        info = c.get("/v1/model").json()
        assert info["sha256"] == sha(files["b"]) and info["reloads"] == 1
        assert info["n_items"] == 35 and info["layers"] == [9]
        after = {s: event(c, s, 110) for s in HISTORIES}
        assert {r.headers[MODEL_HEADER] for r in after.values()} == {sha(files["b"])[:16]}
    with TestClient(create_app(files["b"], SETTINGS)) as fresh:  # B from the start
        for s, items in HISTORIES.items():
            for i in items:
                event(fresh, s, i)
            want = event(fresh, s, 110).json()
            got = after[s].json()
            assert got["length"] == want["length"] == len(items) + 1  # no session was reset
            assert got["items"] == want["items"]
            np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)


def test_a_bad_file_is_refused_and_the_old_model_keeps_answering(
        files: dict[str, Path]) -> None:
    with TestClient(create_app(files["served"], SETTINGS)) as c:
        first = event(c, "s", 101).json()
        files["served"].write_bytes(b"not a model")
        resp = c.post("/v1/admin/reload", headers=AUTH)
        assert resp.status_code == 422
        err = resp.json()["error"]
        assert err["code"] == "reload_failed" and "not a readable gru4rec model file" in \
            err["message"] and "the current model keeps answering" in err["message"]
        files["served"].unlink()
        resp = c.post("/v1/admin/reload", headers=AUTH)
        assert resp.status_code == 422 and "does not exist" in resp.text
        again = event(c, "s", 102)
        assert again.headers[MODEL_HEADER] == sha(files["a"])[:16]
        assert again.json()["length"] == first["length"] + 1
        assert c.get("/v1/model").json()["reloads"] == 0


def test_an_in_memory_model_has_nothing_to_reload(make_model) -> None:
    with TestClient(create_app(make_model(30), SETTINGS)) as c:
        assert c.get("/v1/model").json()["source"] == "in-memory"
        resp = c.post("/v1/admin/reload", headers=AUTH)
        assert resp.status_code == 409 and "no model file to reload" in resp.text


def test_a_request_in_flight_finishes_on_the_old_model(files: dict[str, Path]) -> None:
    app = create_app(files["served"], SETTINGS)
    with TestClient(app) as c:
        old = app.state.slot.current
        entered, release = threading.Event(), threading.Event()
        real_step = old.batcher.step

        async def held_step(*args: object, **kwargs: object):
            entered.set()
            while not release.is_set():  # the request waits inside the old model's batcher
                await asyncio.sleep(0.005)
            return await real_step(*args, **kwargs)

        old.batcher.step = held_step
        replies: list = []
        worker = threading.Thread(target=lambda: replies.append(event(c, "s", 101)))
        worker.start()
        assert entered.wait(10)
        swap_in(files["b"], files["served"])
        assert c.post("/v1/admin/reload", headers=AUTH).json()["status"] == "reloaded"
        release.set()
        worker.join(10)
        assert replies[0].headers[MODEL_HEADER] == sha(files["a"])[:16]
        want = old.model.recommend([[101]], k=20)
        np.testing.assert_allclose(replies[0].json()["scores"], want.scores[0], atol=1e-5)
        nxt = event(c, "s", 102)  # the next one is the new model's, on the same session
        assert nxt.headers[MODEL_HEADER] == sha(files["b"])[:16] and nxt.json()["length"] == 2


def test_the_watcher_reloads_a_replaced_file(files: dict[str, Path]) -> None:
    settings = ServeSettings(max_k=20, watch=0.1)
    with TestClient(create_app(files["served"], settings)) as c:
        event(c, "s", 101)
        swap_in(files["b"], files["served"])
        deadline = time.monotonic() + 10
        while c.get("/v1/model").json()["sha256"] != sha(files["b"]):
            assert time.monotonic() < deadline, "the watcher did not reload the new file"
            time.sleep(0.05)
        files["served"].write_bytes(b"half a model")  # a broken version: logged, not served
        time.sleep(0.5)
        out = event(c, "s", 102)
        assert out.headers[MODEL_HEADER] == sha(files["b"])[:16] and out.json()["length"] == 2
        assert c.get("/v1/model").json()["reloads"] == 1


# ----------------------------------------------------------------------------- running servers


class Server:
    """``gru4rec serve`` in a subprocess on a free port, its output in a log file."""

    def __init__(self, args: list[str], log: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gru4rec", "serve", *args, "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.wait(lambda: self.client.get("/health").status_code == 200, "start")

    def wait(self, ready: object, what: str, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while True:
            assert self.proc.poll() is None, f"the server exited: {self.log.read_text()}"
            try:
                if ready():  # type: ignore[operator]
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no {what} in time: {self.log.read_text()}"
            time.sleep(0.1)

    def serving(self, path: Path, answers: int = 1) -> bool:
        """Whether the next ``answers`` GET /v1/model all name the file's contents."""
        want = sha(path)
        return all(self.client.get("/v1/model").json()["sha256"] == want
                   for _ in range(answers))

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for srv in started:
        srv.stop()


def post_event(srv: Server, sid: str, item: int) -> httpx.Response:
    resp = srv.client.post(f"/v1/sessions/{sid}/events", json={"item_id": item})
    assert resp.status_code == 200, resp.text
    return resp


@pytest.mark.slow
def test_sighup_reloads_a_running_server(files: dict[str, Path], servers: list[Server],
                                         tmp_path: Path) -> None:
    srv = Server([str(files["served"])], tmp_path / "serve.log")
    servers.append(srv)
    assert [post_event(srv, "s", i).json()["length"] for i in (101, 102)] == [1, 2]
    swap_in(files["b"], files["served"])
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait(lambda: srv.serving(files["b"]), "reload after SIGHUP")
    out = post_event(srv, "s", 103)
    assert out.json()["length"] == 3 and out.headers[MODEL_HEADER] == sha(files["b"])[:16]


@pytest.mark.slow
def test_two_workers_sharing_redis_reload_in_place(
        files: dict[str, Path], servers: list[Server], redis_server, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    srv = Server([str(files["served"]), "--workers", "2", "--redis-url", redis_server.url,
                  "--admin-token-file", str(token)], tmp_path / "serve.log")
    servers.append(srv)
    assert [post_event(srv, "s", i).json()["length"] for i in (101, 102)] == [1, 2]
    swap_in(files["b"], files["served"])
    resp = srv.client.post("/v1/admin/reload", headers=AUTH)
    assert resp.status_code == 200 and resp.json()["status"] == "reloaded"
    assert resp.json()["sha256"] == sha(files["b"])
    pids = worker_pids(srv.proc.pid)
    srv.wait(lambda: srv.serving(files["b"], answers=6), "both workers on the new model")
    assert post_event(srv, "s", 103).json()["length"] == 3
    swap_in(files["a"], files["served"])  # and back, by SIGHUP to the main process
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait(lambda: srv.serving(files["a"], answers=6), "both workers on model A again")
    out = post_event(srv, "s", 104)
    assert out.json()["length"] == 4 and out.headers[MODEL_HEADER] == sha(files["a"])[:16]
    assert worker_pids(srv.proc.pid) == pids  # reloaded in place: no worker was replaced


def worker_pids(parent: int) -> set[int]:
    """The worker processes of a server (children of its main process; Linux /proc)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True,
                         text=True)
    return {int(p) for p in out.stdout.split()}
