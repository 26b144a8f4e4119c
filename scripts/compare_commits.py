"""Epoch losses of every preset in configs/, in each embedding mode, on two checkouts.

A refactoring of the training step must not change what it computes: this trains every
preset (1-layer presets as given, then forced to each embedding mode) for a few epochs on
the same sample with the same seed, once per backend, in each checkout, and compares the
epoch losses. Usage:

    python scripts/compare_commits.py OLD_CHECKOUT NEW_CHECKOUT [--epochs 2] [--events 20000]

Each checkout is run in its own subprocess with ``PYTHONPATH=<checkout>/src``; prints one
line per run and the largest relative difference, and exits 1 when it exceeds ``--rtol``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import ast, json, sys
import numpy as np, pandas as pd, torch
import gru4rec
from gru4rec import GRU4Rec, GRU4RecConfig
path, epochs, events, configs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
df = pd.read_csv(path, sep="\t").iloc[:events]
modes = {"onehot": dict(embedding=0, constrained_embedding=False),
         "separate": dict(embedding=64, constrained_embedding=False),
         "shared": dict(embedding=0, constrained_embedding=True)}
out = {"module": gru4rec.__file__}
for cfg_path in configs:
    tree = ast.parse(open(cfg_path).read())
    params = next(ast.literal_eval(n.value.args[0]) for n in ast.walk(tree)
                  if isinstance(n, ast.Assign) and n.targets[0].id == "gru4rec_params")
    for mode, extra in modes.items():
        p = dict(params); p.update(extra); p["n_epochs"] = epochs
        model = GRU4Rec(GRU4RecConfig().replace(**p), device="cpu", seed=1).fit(df)
        out[f"{cfg_path.split('/')[-1]}:{mode}"] = [r.loss for r in model.history_]
print(json.dumps(out))
"""


def _run(checkout: Path, args: argparse.Namespace, native: str) -> dict[str, list[float]]:
    configs = sorted(str(p) for p in (checkout / "configs").glob("*.py"))
    env = {**os.environ, "PYTHONPATH": str(checkout / "src"), "GRU4REC_NATIVE": native}
    proc = subprocess.run([sys.executable, "-c", _CHILD, args.data, str(args.epochs),
                           str(args.events), *configs], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--data", default="../shared/data/yoochoose100k/"
                    "yoochoose-clicks-100k_train_full.txt")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rtol", type=float, default=1e-6)
    args = ap.parse_args()
    worst = 0.0
    for native, label in (("1", "compiled kernels"), ("0", "PyTorch ops")):
        old, new = _run(args.old, args, native), _run(args.new, args, native)
        print(f"# backend: {label}; old {old.pop('module')}, new {new.pop('module')}")
        for key in old:
            rel = max(abs(a - b) / max(abs(a), 1e-30) for a, b in zip(old[key], new[key],
                                                                     strict=True))
            worst = max(worst, rel)
            losses = " ".join(f"{a:.9f}/{b:.9f}" for a, b in zip(old[key], new[key],
                                                                  strict=True))
            print(f"{key:38s} old/new {losses}  max rel diff {rel:.2e}")
    print(f"largest relative difference: {worst:.3e} (tolerance {args.rtol:g})")
    return 0 if worst <= args.rtol else 1


if __name__ == "__main__":
    sys.exit(main())
