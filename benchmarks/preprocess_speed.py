"""Speed and memory of ``gru4rec preprocess rsc15`` on a synthetic 33M-row click log; prints JSON.

    python benchmarks/preprocess_speed.py                      # 33,003,944 rows, cached in /tmp
    python benchmarks/preprocess_speed.py --rows 1000000 --cache-dir /tmp/small

The machine's load average is recorded too: on a shared 2-core machine a busy neighbour
can double the wall time.

The raw file imitates ``yoochoose-clicks.dat`` (RecSys Challenge 2015): no header, lines
``session_id,2014-04-07T10:51:09.277Z,item_id,category``, ~9M sessions with a heavy-tailed
(log-normal) length distribution, ~50k items with Zipf-like popularity, consecutive repeats,
timestamps over six months in session-id order. It is generated vectorised with NumPy and
polars, chunk by chunk, and cached (generation is not timed). The preprocessing runs in a
child process (``python -m gru4rec preprocess rsc15 FILE -o OUT``); the JSON has its wall
seconds, the child's peak resident memory, the split statistics and the machine.
Run nothing else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_model  # noqa: E402  (benchmarks/ is a folder, not a package)

N_ROWS = 33_003_944  # as many clicks as the real yoochoose-clicks.dat
N_ITEMS = 52_739
START_MS = 1_396_310_400_000  # 2014-04-01 00:00:00 UTC
SPAN_MS = 183 * 86_400_000  # about six months
CHUNK_SESSIONS = 1_000_000


def _session_lengths(rng: np.random.Generator, n_rows: int) -> np.ndarray:
    """Heavy-tailed session lengths (log-normal, 1..200, mean ~3.6) summing to ``n_rows``."""
    lengths = np.empty(0, dtype=np.int64)
    while lengths.sum() < n_rows:
        draw = 1 + np.floor(rng.lognormal(mean=0.55, sigma=1.0, size=n_rows // 3 + 10))
        lengths = np.concatenate([lengths, np.minimum(draw, 200).astype(np.int64)])
    ends = np.cumsum(lengths)
    n = int(np.searchsorted(ends, n_rows)) + 1
    lengths = lengths[:n]
    lengths[-1] -= int(ends[n - 1] - n_rows)  # the last session absorbs the excess
    return lengths


def _items(rng: np.random.Generator, size: int, cdf: np.ndarray, ids: np.ndarray,
           starts: np.ndarray) -> np.ndarray:
    """Zipf-like item draws; ~20% of non-first events repeat the previous item."""
    drawn = ids[np.searchsorted(cdf, rng.random(size))]
    repeat = rng.random(size) < 0.2
    repeat[starts] = False
    source = np.maximum.accumulate(np.where(repeat, 0, np.arange(size)))  # last fresh draw
    return drawn[source]


def _chunk(rng: np.random.Generator, first_id: int, lengths: np.ndarray, n_total: int,
           cdf: np.ndarray, ids: np.ndarray) -> object:
    """One chunk of sessions as a polars DataFrame in the raw column order."""
    import polars as pl

    size = int(lengths.sum())
    sessions = np.arange(first_id, first_id + len(lengths), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    begin = START_MS + (sessions - 1) * (SPAN_MS // n_total) + rng.integers(0, 600_000,
                                                                              len(lengths))
    gaps = rng.exponential(90_000.0, size).astype(np.int64)
    gaps[starts] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[starts], lengths)  # cumulative time within each session
    times = np.repeat(begin, lengths) + elapsed
    category = np.where(rng.random(size) < 0.75, "0",
                        np.where(rng.random(size) < 0.4, "S",
                                 rng.integers(1, 13, size).astype(str)))
    return pl.DataFrame({
        "session": np.repeat(sessions, lengths),
        "time": pl.Series(times).cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        "item": _items(rng, size, cdf, ids, starts),
        "category": category,
    })


def generate(path: Path, n_rows: int, seed: int = 0) -> None:
    """Write the synthetic raw file to ``path`` (through a temporary name)."""
    rng = np.random.default_rng(seed)
    lengths = _session_lengths(rng, n_rows)
    weights = 1.0 / (np.arange(N_ITEMS) + 5.0) ** 1.5  # ~1/3 of the items get < 5 clicks
    cdf = np.cumsum(weights) / weights.sum()
    cdf[-1] = 1.0
    ids = 214_500_000 + rng.permutation(N_ITEMS * 4)[:N_ITEMS]
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        for lo in range(0, len(lengths), CHUNK_SESSIONS):
            chunk = _chunk(rng, lo + 1, lengths[lo:lo + CHUNK_SESSIONS], len(lengths), cdf, ids)
            chunk.write_csv(fh, include_header=False)
    os.replace(tmp, path)


def machine() -> dict[str, object]:
    """CPU model and core count of this machine."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}


def split_stats(outdir: Path) -> dict[str, dict[str, object]]:
    """Statistics of the four written splits (read back from ``outdir``)."""
    import polars as pl

    from gru4rec.data.datasets import split_stats as stats_of

    result = {}
    for name in ("train_full", "test", "train_tr", "train_valid"):
        frame = pl.read_csv(outdir / f"{name}.tsv", separator="\t")
        result[name] = stats_of(frame, time_unit="s").as_dict()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=N_ROWS, help="raw rows (default: %(default)s)")
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp"),
                    help="where the raw file is cached and the splits written (default: /tmp)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    raw = args.cache_dir / f"synthetic-yoochoose-clicks-{args.rows}-{args.seed}.dat"
    if not raw.exists():
        t0 = time.perf_counter()
        generate(raw, args.rows, args.seed)
        print(f"generated {raw} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    out = args.cache_dir / f"synthetic-rsc15-{args.rows}-{args.seed}"
    cmd = [sys.executable, "-m", "gru4rec", "preprocess", "rsc15", str(raw), "-o", str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"preprocess failed ({done.returncode}):\n{done.stderr}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({
        "command": " ".join(["gru4rec", *cmd[3:]]),
        "raw_rows": args.rows, "raw_bytes": raw.stat().st_size,
        "wall_s": round(wall, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "stages": done.stderr.splitlines(),  # the command's progress lines (elapsed seconds)
        "splits": split_stats(out), "machine": machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
