"""Load test of ``gru4rec serve``'s events endpoint; prints JSON.

    python benchmarks/serve_load.py                  # memory store, then Redis
    python benchmarks/serve_load.py --no-redis --rate-seconds 5 --sat-seconds 5

The model has 37,500 items and 100 units with randomly initialised weights (cross-entropy
preset, shared embedding): serving cost does not depend on the weights' values, so no
training is needed. The server runs in a subprocess on loopback; a lean asyncio HTTP/1.1
client on keep-alive connections (it shares the CPU with the server) drives
``POST /v1/sessions/{id}/events`` with random sessions and items:

(a) open loop at a fixed rate (default 200 requests/s): latency is measured from each
    request's scheduled send time, so a stalled server cannot hide its backlog;
(b) saturation: N closed-loop clients send back to back: requests/s and latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PRESETS, machine  # noqa: E402  (benchmarks/ is a folder, not a package)

from gru4rec.data.sessions import ItemIndex  # noqa: E402
from gru4rec.model import GRU4Rec  # noqa: E402
from gru4rec.nn.network import Network  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_model(path: Path, n_items: int, units: int, seed: int = 0) -> None:
    model = GRU4Rec(device="cpu", layers=[units], **PRESETS["cross-entropy"])
    gen = torch.Generator().manual_seed(seed)
    model.net_ = Network.initialize(n_items, model.config, gen, torch.device("cpu"))
    model.item_index_ = ItemIndex(np.arange(n_items, dtype=np.int64))
    model.item_support_ = np.ones(n_items, dtype=np.int64)
    model.save(path)


def start_server(model: Path, port: int, redis_url: str | None,
                 extra: tuple[str, ...] = (), log: Path | None = None) -> subprocess.Popen:
    """``gru4rec serve`` in a subprocess, once it accepts connections (output to ``log``)."""
    cmd = [sys.executable, "-m", "gru4rec", "serve", str(model), "--port", str(port), *extra]
    if redis_url:
        cmd += ["--redis-url", redis_url]
    out = subprocess.DEVNULL if log is None else open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=out, stderr=None if log is None else out)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


class Conn:
    """One keep-alive HTTP/1.1 connection; only what the events endpoint's replies need."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await self.reader.readexactly(length)
        return status


def make_requests(n: int, n_items: int, n_sessions: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    sids, items = rng.integers(0, n_sessions, n), rng.integers(0, n_items, n)
    out = []
    for s, i in zip(sids.tolist(), items.tolist(), strict=True):
        body = b'{"item_id": %d, "k": 20}' % i
        out.append(b"POST /v1/sessions/s%d/events HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                   % (s, len(body), body))
    return out


def summary(lat: list[float], errors: int, seconds: float) -> dict[str, float]:
    a = np.asarray(lat) * 1000
    return {"requests": len(lat), "errors": errors, "seconds": round(seconds, 2),
            "requests_per_s": round(len(lat) / seconds, 1),
            **{f"p{q}_ms": round(float(np.percentile(a, q)), 3) for q in (50, 90, 99)},
            "max_ms": round(float(a.max()), 3)}


async def fixed_rate(port: int, reqs: list[bytes], rate: float, seconds: float,
                     n_conns: int = 32) -> dict:
    """Open loop: request i is due at start + i / rate; latency counts from that time."""
    conns = asyncio.Queue()
    for _ in range(n_conns):
        conns.put_nowait(await Conn.open(port))
    lat: list[float] = []
    errors = 0

    async def one(req: bytes, due: float) -> None:
        nonlocal errors
        conn = await conns.get()
        status = await conn.post(req)
        lat.append(time.perf_counter() - due)
        errors += status != 200
        conns.put_nowait(conn)

    n = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(reqs[i % len(reqs)], due)))
    await asyncio.gather(*tasks)
    return summary(lat, errors, time.perf_counter() - start)


async def saturate(port: int, reqs: list[bytes], clients: int, seconds: float) -> dict:
    """Closed loop: ``clients`` connections each send the next request on a reply."""
    lat: list[float] = []
    errors, counter = 0, 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors, counter
        conn = await Conn.open(port)
        while time.perf_counter() < stop:
            req = reqs[counter % len(reqs)]
            counter += 1
            t = time.perf_counter()
            status = await conn.post(req)
            lat.append(time.perf_counter() - t)
            errors += status != 200

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return summary(lat, errors, time.perf_counter() - start)


async def drive(port: int, args: argparse.Namespace, seed: int) -> dict:
    reqs = make_requests(50_000, args.n_items, args.sessions, seed)
    warm = await saturate(port, reqs, 4, 2.0)  # first requests: allocations, caches
    rate = await fixed_rate(port, reqs, args.rate, args.rate_seconds)
    sat = await saturate(port, reqs[::-1], args.clients, args.sat_seconds)
    return {"warmup_requests": warm["requests"], f"fixed_rate_{args.rate:g}_per_s": rate,
            f"saturation_{args.clients}_clients": sat}


def run_case(model: Path, args: argparse.Namespace, redis_url: str | None, seed: int) -> dict:
    port = free_port()
    server = start_server(model, port, redis_url)
    try:
        return asyncio.run(drive(port, args, seed))
    finally:
        server.terminate()
        server.wait(10)


def start_redis(folder: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", folder],
                            stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-items", type=int, default=37_500)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=10_000, help="distinct session ids")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--rate-seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--sat-seconds", type=float, default=15.0)
    ap.add_argument("--no-redis", action="store_true")
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()  # the client must stay cheap: it shares the cores with the server
    except ImportError:
        pass
    torch.set_num_threads(1)
    result: dict = {"machine": {**machine("cpu"), "load_average": os.getloadavg()},
                    "model": {"n_items": args.n_items, "units": args.units,
                              "weights": "random init (cross-entropy preset)"},
                    "sessions": args.sessions}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.pt"
        build_model(model, args.n_items, args.units)
        result["memory"] = run_case(model, args, None, seed=1)
        if not args.no_redis and shutil.which("redis-server"):
            proc, url = start_redis(tmp)
            try:
                result["redis"] = run_case(model, args, url, seed=2)
            finally:
                proc.terminate()
                proc.wait(10)
    result["machine"]["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
