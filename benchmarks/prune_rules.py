"""Pruning rules compared on the same trials: record every trial's learning curve in an
unpruned study, then replay pruners on the curves. Prints a table (and JSON with --json).

    python benchmarks/prune_rules.py record --sampler-seed 1 [--epochs 3] [--trials 30] \\
        --out benchmarks/results/tune_trials/curves_e3_s1.json
    python benchmarks/prune_rules.py replay benchmarks/results/tune_trials/curves_e3_s*.json

``record`` runs the study of ``benchmarks/tune_study.py`` (yoochoose100k ``train_tr`` ->
``train_valid``, the bpr-max space, ``loss=bpr-max``) with a pruner that never prunes, so
every trial reports Recall@20 at every check: 1/8, 1/4 and 1/2 into the first epoch and
after each epoch. With the same sampler seed its trials are those of the unpruned study.

``replay`` goes through the trials in order, each against the trials completed before it
under the same rule, and asks the real pruner objects whether it stops at each check the
rule uses: the epochs a rule trains and whether it keeps the study's best trial. Replayed
trials are the unpruned study's: a real pruned study's sampler, which sees the pruned
trials, suggests other parameters after the first pruned one (``tune_study.py`` runs real
pruned studies).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "configs" / "spaces" / "gru4rec_bprmax_space.json"
RECORDED = (0.125, 0.25, 0.5)  # early checks recorded; each rule uses some of them


def record(a: argparse.Namespace) -> None:
    """Run the unpruned study that reports at every check; write its trials' curves."""
    import optuna

    from gru4rec.tuning import tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = a.data_dir / "yoochoose100k"
    files = [folder / f"yoochoose-clicks-100k_{k}.txt" for k in ("train_tr", "train_valid")]
    if not all(p.is_file() for p in files):
        raise SystemExit(f"error: missing {files[0]} or {files[1]} (pass --data-dir)")
    start = time.perf_counter()
    study = tune(*files, SPACE, fixed={"loss": "bpr-max", "n_epochs": a.epochs},
                 n_trials=a.trials, pruner=optuna.pruners.NopPruner(), prune_early=RECORDED,
                 sampler_seed=a.sampler_seed)
    trials = [{"number": t.number, "state": t.state.name, "value": t.value,
               "params": t.params, "seconds": t.user_attrs.get("seconds"),
               "error": t.user_attrs.get("error"),
               "curve": {str(k): v for k, v in sorted(t.intermediate_values.items())}}
              for t in study.trials]
    out = {"command": " ".join(["python", "benchmarks/prune_rules.py", *sys.argv[1:]]),
           "epochs": a.epochs, "sampler_seed": a.sampler_seed, "early": RECORDED,
           "seconds": round(time.perf_counter() - start, 1), "trials": trials}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(trials)} trials in {out['seconds']} s -> {a.out}")


def _rules(optuna: Any, n_epochs: int) -> dict[str, tuple[Any, set[int]]]:
    """name -> (a fresh pruner factory, the checks (steps) it uses)."""
    from gru4rec.tuning.pruning import RecentMedianPruner

    epochs = {1000 * e for e in range(1, n_epochs)}  # steps: epochs trained in thousandths
    median = lambda: optuna.pruners.MedianPruner(n_startup_trials=5)  # noqa: E731
    recent = lambda: RecentMedianPruner(window=10, n_startup=5)  # noqa: E731
    return {
        "optuna median, after each epoch": (median, epochs),
        "optuna median, +1/8,1/4,1/2": (median, epochs | {125, 250, 500}),
        "recent-10 median, after each epoch": (recent, epochs),
        "recent-10 median, +1/4,1/2": (recent, epochs | {250, 500}),
        "recent-10 median, +1/8,1/4,1/2 (default)": (recent, epochs | {125, 250, 500}),
    }


def _replay(optuna: Any, trials: list[dict[str, Any]], make: Any, checks: set[int],
            n_epochs: int) -> dict[str, Any]:
    """The trials under one rule: epochs trained, trials pruned, best kept."""
    dist = optuna.distributions.FloatDistribution(0, 1)
    study = optuna.create_study(direction="maximize", pruner=make())
    epochs, pruned, best = 0.0, 0, None
    for t in trials:
        curve = {int(k): v for k, v in t["curve"].items()}
        if t["state"] != "COMPLETE":  # failed on its parameters: trained until it failed
            epochs += n_epochs
            continue
        stop = None
        for step in sorted(s for s in curve if s in checks):
            seen = {s: v for s, v in curve.items() if s <= step and (s in checks)}
            running = optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING, params={"x": 0.5},
                distributions={"x": dist}, intermediate_values=seen)
            if study.pruner.prune(study, running):
                stop = step
                break
        if stop is None:
            epochs += n_epochs
            study.add_trial(optuna.trial.create_trial(
                value=t["value"], params={"x": 0.5}, distributions={"x": dist},
                intermediate_values={s: v for s, v in curve.items() if s in checks}))
            if best is None or t["value"] > best[0]:
                best = (t["value"], t["number"])
        else:
            epochs += stop / 1000
            pruned += 1
    return {"epochs": round(epochs, 3), "pruned": pruned,
            "best_value": best[0] if best else None, "best_number": best[1] if best else None}


def replay(a: argparse.Namespace) -> None:
    """Replay every rule on every curve file; print the table."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for path in a.files:
        rec = json.loads(Path(path).read_text())
        trials, n_epochs = rec["trials"], rec["epochs"]
        full = len(trials) * n_epochs
        top = max((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["value"])
        print(f"{path}: {len(trials)} trials of {n_epochs} epochs ({full}), unpruned best "
              f"{top['value']:.4f} (trial {top['number']})")
        for name, (make, checks) in _rules(optuna, n_epochs).items():
            res = _replay(optuna, trials, make, checks, n_epochs)
            saved = 1 - res["epochs"] / full
            print(f"  {name:42s} {res['epochs']:7.2f} epochs ({-100 * saved:+.1f}%), "
                  f"{res['pruned']:2d} pruned, best {res['best_value']:.4f} "
                  f"(trial {res['best_number']})")
            rows.append({"file": str(path), "rule": name, "unpruned_epochs": full,
                         "unpruned_best": top["value"], **res})
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="run an unpruned study that records learning curves")
    r.add_argument("--sampler-seed", type=int, required=True)
    r.add_argument("--epochs", type=int, default=3)
    r.add_argument("--trials", type=int, default=30)
    r.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    r.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("replay", help="replay pruning rules on recorded curves")
    s.add_argument("files", nargs="+")
    s.add_argument("--json", help="also write the rows as JSON to this file")
    a = p.parse_args()
    record(a) if a.cmd == "record" else replay(a)


if __name__ == "__main__":
    main()
