"""Fixtures of the service tests: a throwaway redis-server, and ``gru4rec serve`` in a
subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


class RedisServer:
    """A throwaway redis-server on localhost: no persistence, or with ``aof`` an append-only
    file fsynced before each write is acknowledged (it survives a SIGKILL)."""

    def __init__(self, folder: Path, aof: bool = False) -> None:
        self.port, self.folder, self.aof, self.proc = free_port(), folder, aof, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else \
            ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence, "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:  # while it loads its AOF, Redis answers "LOADING" (a ConnectionError)
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL: no chance to save anything."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def _require_redis() -> None:
    pytest.importorskip("redis", reason="the serve extra is not installed")
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (apt-get install -y redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; it is required when the CI environment variable is set")
        pytest.skip(message)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running throwaway redis-server (skipped without the binary or the serve extra,
    failing under CI)."""
    _require_redis()
    srv = RedisServer(tmp_path)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Like ``redis_server``, with its append-only file on (``appendfsync always``)."""
    _require_redis()
    srv = RedisServer(tmp_path, aof=True)
    srv.start()
    yield srv
    srv.stop()

def free_port() -> int:
    """A TCP port free on localhost right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    """Until ``port`` accepts connections (fails when ``proc`` exits or time runs out)."""
    deadline = time.time() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert proc.poll() is None and time.time() < deadline, "did not start"
            time.sleep(0.05)


@pytest.fixture
def serve_cli() -> Iterator[Callable[..., int]]:
    """``start(model_path, *flags) -> port``: ``gru4rec serve`` in a subprocess, once it
    accepts connections; stopped at the end of the test."""
    procs: list[subprocess.Popen] = []

    def start(model: Path, *flags: str) -> int:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "gru4rec", "serve", str(model),
                                 "--port", str(port), *flags],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_for_port(port, proc)
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(30)
