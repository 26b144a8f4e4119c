"""Soak test of ``gru4rec serve``: a steady 50% of its saturation rate for 10 minutes; prints
one JSON line per minute and a JSON summary.

    python benchmarks/soak.py --out benchmarks/results/soak_cpu.json   # memory store, 10 min
    python benchmarks/soak.py --minutes 2 --redis     # Redis store (needs redis-server)

The model has 37,500 items and 100 units (random weights, as in ``serve_load.py``). wrk (a
real HTTP load generator, ``apt-get install wrk``) posts clicks of random sessions and items
to ``POST /v1/sessions/{id}/events`` through a Lua script. First it finds the saturation rate
(``--connections`` connections back to back for ``--sat-seconds``); then it runs at half that
rate, paced by wrk's ``delay()`` hook (set by up to three 10-second trial runs), one minute at a
time. After every minute it records
wrk's p50/p99/max and its errors (socket errors, timeouts, non-2xx), the service's resident
memory (RSS, all its processes) and its live session count (``GET /health``). The session ids
come from a space ``--id-factor`` times larger than ``--max-sessions``, so the store keeps
evicting the least recently used sessions: memory must stay flat once the bound is reached.

Verdict fields: p99 per minute flat within 2x (max/min), 0 errors, RSS growth after the
first minute, and the session bound respected.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402  (benchmarks/ is a folder, not a package)
from serve_load import build_model, free_port, start_redis, start_server  # noqa: E402

WRK_SCRIPT = """
local n_items, n_sessions, delay_ms, tid = %d, %d, %f, 0
local threads = {}
setup = function(thread)
  thread:set("tid", tid); tid = tid + 1; table.insert(threads, thread)
end
init = function(args) math.randomseed(7919 * tid + os.time()); non200 = 0 end
request = function()
  local body = string.format('{"item_id": %%d, "k": 20}', math.random(0, n_items - 1))
  local path = string.format("/v1/sessions/s%%d/events", math.random(n_sessions))
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body) if status ~= 200 then non200 = non200 + 1 end end
delay = function() return delay_ms end
done = function(summary, latency, requests)
  local e, bad = summary.errors, 0
  for _, t in ipairs(threads) do bad = bad + t:get("non200") end
  io.write(string.format('WRK {"requests": %%d, "seconds": %%.3f, "connect_errors": %%d, ' ..
    '"read_errors": %%d, "write_errors": %%d, "timeouts": %%d, "non_200": %%d, ' ..
    '"p50_ms": %%.3f, "p99_ms": %%.3f, "max_ms": %%.3f}\\n', summary.requests,
    summary.duration / 1e6, e.connect, e.read, e.write, e.timeout, bad,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def wrk(port: int, script: Path, seconds: float, connections: int, threads: int
        ) -> dict[str, Any]:
    """One wrk run -> its JSON line (requests, errors, latency percentiles in ms)."""
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
                          "--timeout", "5s", "-s", str(script), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True).stdout
    res = json.loads(next(x for x in out.splitlines() if x.startswith("WRK "))[4:])
    res["requests_per_s"] = round(res["requests"] / res["seconds"], 1)
    res["errors"] = sum(res[k] for k in ("connect_errors", "read_errors", "write_errors",
                                         "timeouts", "non_200"))
    return res


def write_script(path: Path, n_items: int, n_sessions: int, delay_ms: float) -> Path:
    path.write_text(WRK_SCRIPT % (n_items, n_sessions, delay_ms))
    return path


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (MiB)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(c) for c in children]
        except (OSError, AttributeError):
            continue
    return round(total / 1024, 1)


def health(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            return json.loads(resp.read())
    except OSError as exc:  # a 503 body is JSON too, but any failure is recorded as is
        return {"error": str(exc)}


def soak(args: argparse.Namespace, model: Path, redis_url: str | None, tmp: Path
         ) -> dict[str, Any]:
    port = free_port()
    extra = ("--max-sessions", str(args.max_sessions), "--workers", str(args.workers))
    server = start_server(model, port, redis_url, extra)
    n_ids = args.max_sessions * args.id_factor
    try:
        fast = write_script(tmp / "sat.lua", args.n_items, n_ids, 0.0)
        wrk(port, fast, 5, args.connections, args.threads)  # warm-up
        sat = wrk(port, fast, args.sat_seconds, args.connections, args.threads)
        target = args.load * sat["requests_per_s"]
        # each connection waits this long after each reply: connections / target less the
        # reply's own time, which is not known in advance: corrected by short trial runs
        delay_ms = 1000.0 * args.connections / target
        for _ in range(3):
            paced = write_script(tmp / "soak.lua", args.n_items, n_ids, delay_ms)
            got = wrk(port, paced, 10, args.connections, args.threads)["requests_per_s"]
            if abs(got - target) < 0.03 * target:
                break
            delay_ms = max(0.0, delay_ms + 1000.0 * args.connections * (1 / target - 1 / got))
        paced = write_script(tmp / "soak.lua", args.n_items, n_ids, delay_ms)
        print(json.dumps({"saturation": sat, "target_per_s": round(target, 1),
                          "delay_ms": round(delay_ms, 2)}), flush=True)
        minutes = []
        for minute in range(1, args.minutes + 1):
            res = wrk(port, paced, 60, args.connections, args.threads)
            h = health(port)
            row = {"minute": minute, "requests_per_s": res["requests_per_s"],
                   "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"], "max_ms": res["max_ms"],
                   "errors": res["errors"], "rss_mib": rss_mib(server.pid),
                   "sessions": h.get("sessions"), "health": h.get("status", h.get("error"))}
            minutes.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        server.wait(30)
    p99 = [m["p99_ms"] for m in minutes]
    rss = [m["rss_mib"] for m in minutes]
    sessions = [m["sessions"] for m in minutes if m["sessions"] is not None]
    return {"saturation_per_s": sat["requests_per_s"], "target_per_s": round(target, 1),
            "minutes": minutes,
            "verdict": {"p99_max_over_min": round(max(p99) / min(p99), 2),
                        "p99_flat_within_2x": max(p99) <= 2 * min(p99),
                        "errors": sum(m["errors"] for m in minutes),
                        "rss_first_last_max_mib": [rss[0], rss[-1], max(rss)],
                        "rss_growth_after_minute_1_mib": round(max(rss) - rss[0], 1),
                        "max_sessions": args.max_sessions,
                        "sessions_max_seen": max(sessions) if sessions else None,
                        "session_bound_respected": (all(s <= args.max_sessions
                                                        for s in sessions)
                                                    if sessions else None)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--load", type=float, default=0.5, help="share of saturation (0.5)")
    ap.add_argument("--n-items", type=int, default=37_500)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--max-sessions", type=int, default=20_000,
                    help="the memory store's bound (--max-sessions of gru4rec serve)")
    ap.add_argument("--id-factor", type=int, default=4,
                    help="distinct session ids = this x --max-sessions (4)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    ap.add_argument("--sat-seconds", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--redis", action="store_true", help="Redis store (needs redis-server)")
    ap.add_argument("--out", type=Path, help="also write the summary JSON to this file")
    args = ap.parse_args()
    for tool in ("wrk",) + (("redis-server",) if args.redis else ()):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install -y wrk redis-server)")
    result: dict[str, Any] = {
        "machine": {**machine("cpu"), "load_average": os.getloadavg()},
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "model": {"n_items": args.n_items, "units": args.units},
        "store": "redis" if args.redis else "memory", "workers": args.workers,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        model = tmp / "model.pt"
        build_model(model, args.n_items, args.units)
        redis = start_redis(name) if args.redis else None
        try:
            result.update(soak(args, model, None if redis is None else redis[1], tmp))
        finally:
            if redis is not None:
                redis[0].terminate()
                redis[0].wait(10)
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
