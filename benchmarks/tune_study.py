"""What ``gru4rec tune`` buys on yoochoose100k, and what its median pruner saves; prints JSON
and a table.

    python benchmarks/tune_study.py --out benchmarks/results/tune_yoochoose100k_bprmax.json \\
        [--pruners none median] [--sampler-seeds 1 2 3] [--trials 30] [--epochs 3] \\
        [--check-seeds 1 2 3] [--threads 2]

For every (pruner, sampler seed) it runs the real command, one study after the other::

    gru4rec tune train_tr train_valid -opf configs/spaces/gru4rec_bprmax_space.json \\
        -fp loss=bpr-max,n_epochs=3 -nt 30 --pruner P --sampler_seed S -o WORKDIR/P_sS

(a study that stopped half-way is continued by the same command, as the tool does), and
records the epochs trained, the trials pruned and failed and the best trial. Then:

- noise: the best parameters of each study trained again on ``train_tr`` with every
  ``--check-seeds`` training seed and measured on ``train_valid`` (how much of a difference
  between two best values is the seed's);
- test: ``gru4rec run train_full -pf best_params.py -t test --seed S`` for each study's best
  and for the untuned default (``-ps loss=bpr-max,n_epochs=3``), with every check seed.

Recall@20 with standard ties, as the tool optimises it by default.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "configs" / "spaces" / "gru4rec_bprmax_space.json"
_RESULT = re.compile(r"^Recall@20: ([0-9.]+) MRR@20: ([0-9.]+)$", re.M)


def _files(data_dir: Path) -> dict[str, Path]:
    folder = data_dir / "yoochoose100k"
    files = {k: folder / f"yoochoose-clicks-100k_{k}.txt"
             for k in ("train_tr", "train_valid", "train_full", "test")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"error: missing {', '.join(missing)} (pass --data-dir)")
    return files


def _gru4rec(*args: str, log: Path | None = None) -> str:
    """Run the ``gru4rec`` command; its stdout (also written to ``log``)."""
    cmd = [sys.executable, "-m", "gru4rec.cli.main", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if log is not None:
        log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def _study(files: dict[str, Path], work: Path, pruner: str, seed: int,
           a: argparse.Namespace) -> dict[str, Any]:
    """Run (or continue) one study; its summary from trials.json."""
    out = work / f"{pruner}_s{seed}"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    _gru4rec("tune", str(files["train_tr"]), str(files["train_valid"]), "-opf", str(SPACE),
             "-fp", f"loss=bpr-max,n_epochs={a.epochs}", "-nt", str(a.trials),
             "--pruner", pruner, "--sampler_seed", str(seed), "-o", str(out), "--no_final",
             "--threads", str(a.threads), log=out / "log.txt")
    trials = json.loads((out / "trials.json").read_text())
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    best = max(complete, key=lambda t: t["value"])
    return {"pruner": pruner, "sampler_seed": seed, "trials": len(trials),
            "epochs": sum(t["epochs"] or 0 for t in trials),
            "pruned": sum(t["state"] == "PRUNED" for t in trials),
            "failed": sum(t["state"] == "FAIL" for t in trials),
            "trial_seconds": round(sum(t["seconds"] or 0 for t in trials), 1),
            "wall_seconds": round(time.perf_counter() - start, 1),
            "best_number": best["number"], "best_value": best["value"],
            "best_params": {k[6:]: v for k, v in best.items() if k.startswith("param_")},
            "params_file": str(out / "best_params.py")}


def _check(files: dict[str, Path], params: list[str], seeds: list[int], train: str,
           test: str) -> list[float]:
    """Recall@20 of ``gru4rec run TRAIN PARAMS -t TEST --seed S`` for every seed."""
    values = []
    for seed in seeds:
        out = _gru4rec("run", str(files[train]), *params, "-t", str(files[test]), "--seed",
                       str(seed), "--threads", "0")
        match = _RESULT.search(out)
        if match is None:
            raise SystemExit(f"error: no Recall@20 line in:\n{out}")
        values.append(float(match.group(1)))
    return values


def _stats(values: list[float]) -> dict[str, Any]:
    return {"values": values, "mean": statistics.fmean(values), "min": min(values),
            "max": max(values)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--workdir", type=Path, default=ROOT / "runs" / "tune_study")
    p.add_argument("--pruners", nargs="+", default=["none", "median"])
    p.add_argument("--sampler-seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--check-seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--threads", type=int, default=0, help="for the trials (0: PyTorch's)")
    a = p.parse_args(argv)
    files = _files(a.data_dir)
    studies = []
    for seed in a.sampler_seeds:
        for pruner in a.pruners:
            s = _study(files, a.workdir, pruner, seed, a)
            print(f"{pruner} seed {seed}: {s['epochs']} epochs, {s['pruned']} pruned, best "
                  f"{s['best_value']:.4f} (trial {s['best_number']}), {s['wall_seconds']} s",
                  file=sys.stderr, flush=True)
            studies.append(s)
    default = ["-ps", f"loss=bpr-max,n_epochs={a.epochs}"]
    result: dict[str, Any] = {
        "command": " ".join(sys.argv), "space": str(SPACE.relative_to(ROOT)),
        "epochs": a.epochs, "trials": a.trials, "threads": a.threads,
        "cpu_count": os.cpu_count(), "studies": studies,
        "default": {"valid": _stats(_check(files, default, a.check_seeds, "train_tr",
                                           "train_valid")),
                    "test": _stats(_check(files, default, a.check_seeds, "train_full",
                                          "test"))}}
    for s in studies:
        params = ["-pf", s["params_file"]]
        s["valid"] = _stats(_check(files, params, a.check_seeds, "train_tr", "train_valid"))
        s["test"] = _stats(_check(files, params, a.check_seeds, "train_full", "test"))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    _table(result)


def _table(result: dict[str, Any]) -> None:
    """Per study: epochs, pruned, best value, and the check runs (mean (min-max))."""
    def span(x: dict[str, Any]) -> str:
        return f"{x['mean']:.4f} ({x['min']:.4f}-{x['max']:.4f})"

    print("| study | epochs | pruned | best trial, train_valid | its params, seeds, "
          "train_valid | on train_full -> test |")
    print("|---|---|---|---|---|---|")
    d = result["default"]
    print(f"| default parameters | | | | {span(d['valid'])} | {span(d['test'])} |")
    for s in result["studies"]:
        print(f"| {s['pruner']}, sampler seed {s['sampler_seed']} | {s['epochs']} | "
              f"{s['pruned']} | {s['best_value']:.4f} (trial {s['best_number']}) | "
              f"{span(s['valid'])} | {span(s['test'])} |")


if __name__ == "__main__":
    main()
