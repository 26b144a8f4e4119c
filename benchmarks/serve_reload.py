"""Load test of model reload in ``gru4rec serve``: wrk drives the events endpoint while the
model is swapped three times; prints JSON.

    python benchmarks/serve_reload.py                # the three cases below, ~3 minutes
    python benchmarks/serve_reload.py --cases memory --seconds 20

Four model files (random weights, cross-entropy preset, 100 units) stand for a model and
three retrained versions: each knows the items of the one before plus 500 new ones (37,500
to 39,000 items) and has other weights. Each case starts ``gru4rec serve`` on the first,
then during ``--seconds`` of load swaps in the next version at 1/4, 2/4 and 3/4 of the run:

- ``memory``: one worker, memory store; swaps by SIGHUP, ``POST /v1/admin/reload``, SIGHUP;
- ``redis``: two workers sharing Redis; swaps by the admin route, SIGHUP, the admin route
  (uvicorn replaces the workers one at a time);
- ``watch``: one worker with ``--watch 1``; swaps by replacing the file.

The load: wrk (``--connections`` keep-alive connections, closed loop) posts clicks of
random items every model knows to 5,000 random sessions, and a probe client follows 32
sessions click by click (120 clicks each, then a new session; a fifth of its clicks are on
items only later models know). What is checked:

- failed requests: wrk's socket errors, timeouts and non-2xx replies, and the probe's;
- no session reset: every probe reply's ``length`` equals the number of the session's
  clicks that the answering model knows (``X-Gru4rec-Model``), i.e. nothing was forgotten;
- answers after a swap: the first reply of each probe session from each model, and its
  last, are sent again to a fresh service of that model (same clicks, in a new session):
  items must be equal and scores within 1e-4.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402  (benchmarks/ is a folder, not a package)
from serve_load import build_model, free_port, start_redis, start_server  # noqa: E402

TOKEN = "load-test-admin-token-0123456789"
BASE_ITEMS, NEW_PER_VERSION, VERSIONS = 37_500, 500, 4
WRK_SESSIONS = 5_000
SWAPS = {"memory": ["sighup", "admin", "sighup"], "redis": ["admin", "sighup", "admin"],
         "watch": ["file", "file", "file"]}

WRK_SCRIPT = """
local n_items, n_sessions, tid = %d, %d, 0
setup = function(thread) thread:set("tid", tid); tid = tid + 1 end
init = function(args) math.randomseed(1000 + tid) end
request = function()
  local body = string.format('{"item_id": %%d}', math.random(0, n_items - 1))
  local path = string.format("/v1/sessions/w%%d-%%d/events", tid, math.random(n_sessions))
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %%d, "seconds": %%.2f, "connect_errors": %%d, ' ..
    '"read_errors": %%d, "write_errors": %%d, "timeouts": %%d, "non_2xx": %%d, ' ..
    '"p50_ms": %%.2f, "p99_ms": %%.2f, "max_ms": %%.2f}\\n', summary.requests,
    summary.duration / 1e6, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def swap_in(src: Path, dst: Path) -> None:
    """Replace ``dst`` atomically by a copy of ``src``."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class Http:
    """A keep-alive JSON client on one connection (no retries: every error counts)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body)
        self.conn.request(method, path, data,
                          {"Content-Type": "application/json", **(headers or {})})
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, (
            json.loads(raw) if raw else None)

    def close(self) -> None:
        self.conn.close()


def wait_ready(port: int, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            client = Http(port)
            ok = client.call("GET", "/health")[0] == 200
            client.close()
            if ok:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready")


class Probe(threading.Thread):
    """Follows ``n`` sessions click by click and records every reply."""

    def __init__(self, port: int, n: int, n_max_items: int, seed: int, stop: threading.Event,
                 clicks_per_session: int = 120, pause: float = 0.004) -> None:
        super().__init__(daemon=True)
        self.port, self.n, self.n_max = port, n, n_max_items
        self.rng, self.stop, self.per, self.pause = random.Random(seed), stop, \
            clicks_per_session, pause
        self.records: list[dict[str, Any]] = []  # session, clicks so far, model, reply
        self.failures: list[str] = []

    def item(self) -> int:
        if self.rng.random() < 0.2:  # an item that only later versions know
            return self.rng.randrange(BASE_ITEMS, self.n_max)
        return self.rng.randrange(BASE_ITEMS)

    def run(self) -> None:
        client = Http(self.port)
        clicks: dict[str, list[int]] = {}
        gen = [0] * self.n
        while not self.stop.is_set():
            for j in range(self.n):
                sid = f"p{j}-{gen[j]}"
                hist = clicks.setdefault(sid, [])
                item = self.item()
                try:
                    status, headers, body = client.call(
                        "POST", f"/v1/sessions/{sid}/events", {"item_id": item, "k": 20})
                except (OSError, http.client.HTTPException) as exc:
                    self.failures.append(f"{sid}: {exc!r}")
                    client.close()
                    client = Http(self.port)
                    continue
                if status != 200:
                    self.failures.append(f"{sid}: HTTP {status} {body}")
                    continue
                hist.append(item)
                self.records.append({"sid": sid, "clicks": list(hist), "reply": body,
                                     "model": headers.get("x-gru4rec-model", "")})
                if len(hist) >= self.per:
                    gen[j] += 1
                time.sleep(self.pause)
        client.close()


def run_wrk(port: int, seconds: float, connections: int, script: Path) -> dict[str, Any]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout",
                          "10s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    res = json.loads(line[4:])
    res["requests_per_s"] = round(res["requests"] / res["seconds"], 1)
    return res


def check_answers(records: list[dict[str, Any]], files: dict[str, Path],
                  n_items: dict[str, int], tmp: Path) -> dict[str, Any]:
    """Session resets and answers against fresh services, per answering model."""
    resets = [r for r in records if r["reply"]["length"] != sum(
        i < n_items[r["model"]] for i in r["clicks"])]
    chosen: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:  # first and last reply of each session from each model
        chosen.setdefault((r["sid"], r["model"]), []).append(r)
    todo: dict[str, list[dict[str, Any]]] = {}
    for (_, model), rs in chosen.items():
        todo.setdefault(model, []).extend({id(rs[0]): rs[0], id(rs[-1]): rs[-1]}.values())
    compared, mismatches = 0, []
    for model, rs in todo.items():
        port = free_port()
        proc = start_server(files[model], port, None, log=tmp / f"fresh-{model}.log")
        try:
            wait_ready(port, proc)
            client = Http(port)
            for n, r in enumerate(rs):
                for item in r["clicks"]:  # the same clicks, to a new session
                    _, _, want = client.call("POST", f"/v1/sessions/fresh{n}/events",
                                             {"item_id": item, "k": 20})
                got = r["reply"]
                scores_ok = len(got["scores"]) == len(want["scores"]) and all(
                    abs(a - b) <= 1e-4 for a, b in zip(got["scores"], want["scores"],
                                                       strict=True))
                if got["items"] != want["items"] or not scores_ok or \
                        got["length"] != want["length"]:
                    mismatches.append({"sid": r["sid"], "model": model, "got": got,
                                       "want": want})
                compared += 1
            client.close()
        finally:
            proc.terminate()
            proc.wait(30)
    return {"probe_replies": len(records), "session_resets": len(resets),
            "compared_with_a_fresh_service": compared, "answer_mismatches": len(mismatches),
            "first_mismatch": mismatches[0] if mismatches else None}


def run_case(case: str, versions: list[Path], args: argparse.Namespace, tmp: Path,
             redis_url: str | None) -> dict[str, Any]:
    served = tmp / f"served-{case}.pt"
    shutil.copyfile(versions[0], served)
    tags = {sha(v)[:16]: v for v in versions}
    n_items = {t: BASE_ITEMS + NEW_PER_VERSION * j for j, t in enumerate(tags)}
    token = tmp / "token"
    token.write_text(TOKEN + "\n")
    extra = ["--admin-token-file", str(token)]
    if case == "redis":
        extra += ["--workers", "2"]
    if case == "watch":
        extra += ["--watch", "1"]
    port = free_port()
    log = tmp / f"serve-{case}.log"
    proc = start_server(served, port, redis_url, tuple(extra), log=log)
    try:
        wait_ready(port, proc)
        script = tmp / "load.lua"
        script.write_text(WRK_SCRIPT % (BASE_ITEMS, WRK_SESSIONS))
        stop = threading.Event()
        probe = Probe(port, 32, BASE_ITEMS + NEW_PER_VERSION * (VERSIONS - 1), 7, stop)
        wrk_result: dict[str, Any] = {}
        wrk = threading.Thread(target=lambda: wrk_result.update(
            run_wrk(port, args.seconds, args.connections, script)))
        start = time.monotonic()
        wrk.start()
        probe.start()
        swaps = []
        for n, how in enumerate(SWAPS[case], start=1):
            time.sleep(max(0.0, start + args.seconds * n / 4 - time.monotonic()))
            swap_in(versions[n], served)
            t0 = time.monotonic()
            if how == "sighup":
                proc.send_signal(signal.SIGHUP)
            elif how == "admin":  # a new connection: an idle one times out (keep-alive 5 s)
                admin = Http(port)
                status, _, body = admin.call("POST", "/v1/admin/reload",
                                             headers={"Authorization": f"Bearer {TOKEN}"})
                admin.close()
                assert status == 200 and body["status"] == "reloaded", (status, body)
            want = sha(versions[n])[:16]
            while not any(r["model"] == want for r in probe.records[-5:]):
                if time.monotonic() - t0 > 90:
                    raise RuntimeError(f"swap {n} ({how}) did not take effect in 90 s; the "
                                       f"server's log:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)
            swaps.append({"by": how, "at_s": round(t0 - start, 1),
                          "effective_after_s": round(time.monotonic() - t0, 2)})
        wrk.join()
        stop.set()
        probe.join()
        status, _, info = Http(port).call("GET", "/v1/model")
        final = {"sha256_16": info["sha256"][:16], "n_items": info["n_items"]}
    finally:
        proc.terminate()
        proc.wait(30)
    checks = check_answers(probe.records, {t: v for t, v in tags.items()}, n_items, tmp)
    return {"swaps": swaps, "wrk": wrk_result, "probe_failures": len(probe.failures),
            "probe_first_failure": probe.failures[0] if probe.failures else None,
            "failed_requests": sum(wrk_result[k] for k in (
                "connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx"))
            + len(probe.failures),
            "replies_by_model": {t: sum(r["model"] == t for r in probe.records) for t in tags},
            "final_model": final, **checks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=list(SWAPS), default=list(SWAPS))
    ap.add_argument("--seconds", type=float, default=40.0, help="load per case (40)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    ap.add_argument("--units", type=int, default=100)
    args = ap.parse_args()
    for tool in ("wrk",) + (("redis-server",) if "redis" in args.cases else ()):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install -y wrk redis-server)")
    result: dict[str, Any] = {"machine": {**machine("cpu"), "load_average": os.getloadavg()},
                              "seconds": args.seconds, "connections": args.connections,
                              "wrk_version": re.sub(r"\s+", " ", subprocess.run(
                                  ["wrk", "-v"], capture_output=True, text=True).stdout
                                  .splitlines()[0])}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        versions = []
        for j in range(VERSIONS):
            path = tmp / f"v{j}.pt"
            build_model(path, BASE_ITEMS + NEW_PER_VERSION * j, args.units, seed=j)
            versions.append(path)
        for case in args.cases:
            redis_proc, url = start_redis(folder) if case == "redis" else (None, None)
            try:
                result[case] = run_case(case, versions, args, tmp, url)
            finally:
                if redis_proc is not None:
                    redis_proc.terminate()
                    redis_proc.wait(10)
            print(f"{case}: {result[case]['failed_requests']} failed requests, "
                  f"{result[case]['session_resets']} session resets, "
                  f"{result[case]['answer_mismatches']} answer mismatches", file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
