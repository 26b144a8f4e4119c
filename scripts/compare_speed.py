"""Training speed of two checkouts, measured side by side (interleaved runs).

On a small shared machine the same epoch moves by 15-25% from one minute to the next, so
two versions are compared by alternating single-epoch runs of ``benchmarks/train_speed.py``
(old, new, old, new, ...) and comparing the medians. Usage:

    python scripts/compare_speed.py OLD_CHECKOUT NEW_CHECKOUT [--loss bpr-max] [--pairs 3]

Prints one line per run and the medians with their ratio (new / old).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def _epoch(checkout: Path, loss: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    proc = subprocess.run([sys.executable, str(checkout / "benchmarks" / "train_speed.py"),
                           "--loss", loss, "--runs", "1"], env=env, cwd=checkout,
                          capture_output=True, text=True, check=True)
    return float(json.loads(proc.stdout)["median_mb_per_s"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--loss", default="bpr-max")
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    speeds: dict[str, list[float]] = {"old": [], "new": []}
    for i in range(args.pairs):
        for label, checkout in (("old", args.old), ("new", args.new)):
            mbps = _epoch(checkout, args.loss)
            speeds[label].append(mbps)
            print(f"{args.loss} pair {i + 1} {label}: {mbps:.1f} mb/s", flush=True)
    old, new = (statistics.median(speeds[k]) for k in ("old", "new"))
    print(f"{args.loss} median old {old:.1f} mb/s, new {new:.1f} mb/s, new/old {new / old:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
