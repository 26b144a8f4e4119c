"""Sequence-aware against session-based GRU4Rec on a log of returning users; prints a
table and writes JSON.

    python benchmarks/sequence_aware.py --out benchmarks/results/sequence_aware_synthetic.json \\
        [--users 2000] [--items 2000] [--epochs 5] [--seeds 1 2 3] [--bptt 1 5 10]

Data: ``make_user_sessions`` (every user keeps one taste across their sessions), split by
session start time with ``train_test_split_last`` (the sessions of the last 15% of the
time are the test; test events of unknown items and test sessions left with one event are
dropped). Every run trains on the training part with the same hyperparameters and is
measured with Recall@20 and MRR@20 on the same test predictions (the next item within a
session):

- ``session-based``: ``session_boundary=reset`` (the original), evaluated from zero states;
- ``carry, T``: ``session_boundary=carry,bptt=T``, evaluated from each user's state at the
  end of the training data (``continue_state``), and also from zero states.

With ``--data retailrocket-format`` the same log is written as a Retailrocket
``events.csv`` (views of visitors, epoch milliseconds over the 28 days before the recipe's
end date) and goes through ``gru4rec preprocess retailrocket --keep-user`` (the RecSys 2023
protocol: sessions cut at 1-hour gaps, repeats and rare items dropped, the last 7 days as
test); the runs train on ``train_full`` and are measured on ``test``.

Training time and events per second are measured on this machine, one run at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

PARAMS = {"loss": "cross-entropy", "layers": [100], "batch_size": 32, "n_sample": 512,
          "learning_rate": 0.1, "dropout_p_hidden": 0.2}


def _run(train: Any, test: Any, boundary: str, bptt: int, epochs: int, seed: int,
         threads: int) -> dict[str, Any]:
    import torch

    from gru4rec import GRU4Rec, evaluate

    if threads:
        torch.set_num_threads(threads)
    model = GRU4Rec(device="cpu", seed=seed, n_epochs=epochs, session_boundary=boundary,
                    bptt=bptt, **PARAMS)
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    events_per_s = sum(r.n_events for r in model.history_) / sum(r.seconds for r in
                                                                  model.history_)
    out = {"boundary": boundary, "bptt": bptt, "seed": seed, "train_seconds": round(seconds, 2),
           "events_per_s": round(events_per_s)}
    zero = evaluate(model, test)
    out.update({"recall_zero": zero["Recall@20"], "mrr_zero": zero["MRR@20"],
                "n_predictions": zero.n_predictions})
    if boundary == "carry":
        cont = evaluate(model, test, continue_state=True)
        assert cont.n_predictions == zero.n_predictions
        out.update({"recall": cont["Recall@20"], "mrr": cont["MRR@20"]})
    else:
        out.update({"recall": zero["Recall@20"], "mrr": zero["MRR@20"]})
    return out


def _retailrocket_format(n_items: int, n_users: int, workdir: Path) -> tuple[Any, Any]:
    """The user log as a Retailrocket events.csv, through the retailrocket recipe with the
    user column kept; (train_full, test) as Events with users."""
    import numpy as np

    from gru4rec.data.datasets import run_recipe
    from gru4rec.data.io import read_events
    from gru4rec.data.synthetic import make_user_sessions

    days = 28
    events = make_user_sessions(n_items, n_users, seed=0, time_span=days * 86_400.0)
    end = 1_442_545_200_000  # the recipe's T
    ms = (end - days * 86_400_000 + events.time * 1000).astype(np.int64)
    assert events.user is not None
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "events.csv"
    rows = [f"{t},{u},view,{i}," for t, u, i in zip(ms.tolist(), events.user.tolist(),
                                                      events.item.tolist(), strict=True)]
    path.write_text("timestamp,visitorid,event,itemid,transactionid\n" + "\n".join(rows)
                    + "\n")
    frames = run_recipe("retailrocket", [path], keep_user=True).frames
    return (read_events(frames["train_full"], user_key="UserId"),
            read_events(frames["test"], user_key="UserId"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--items", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--bptt", type=int, nargs="+", default=[1, 5, 10])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--data", choices=("synthetic", "retailrocket-format"), default="synthetic")
    p.add_argument("--workdir", type=Path, default=Path("runs") / "sequence_aware")
    a = p.parse_args()
    from gru4rec.data.synthetic import make_user_sessions, train_test_split_last

    if a.data == "synthetic":
        events = make_user_sessions(a.items, a.users, seed=0)
        train, test = train_test_split_last(events, 0.15)
    else:
        train, test = _retailrocket_format(a.items, a.users, a.workdir)
    print(f"{len(train)} training events of {len(set(train.user.tolist()))} users, {len(test)} "
          f"test events", file=sys.stderr)
    runs = []
    for seed in a.seeds:
        for boundary, bptt in [("reset", 1), *(("carry", t) for t in a.bptt)]:
            r = _run(train, test, boundary, bptt, a.epochs, seed, a.threads)
            print(json.dumps(r), file=sys.stderr, flush=True)
            runs.append(r)
    result = {"command": " ".join(["python", *sys.argv]), "data": a.data, "params": PARAMS,
              "epochs": a.epochs, "users": a.users, "items": a.items,
              "train_events": len(train), "test_events": len(test),
              "cpu_count": os.cpu_count(), "runs": runs}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    _table(runs)


def _table(runs: list[dict[str, Any]]) -> None:
    """Mean over seeds per setting, and the lift over session-based."""
    def mean(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.fmean(r[key] for r in rows)

    base = [r for r in runs if r["boundary"] == "reset"]
    print("| training | Recall@20 | MRR@20 | from zero states: Recall@20 | training s | "
          "events/s |")
    print("|---|---|---|---|---|---|")
    settings = [("reset", 1)] + sorted({("carry", r["bptt"]) for r in runs
                                        if r["boundary"] == "carry"}, key=lambda s: s[1])
    for boundary, bptt in settings:
        rows = [r for r in runs if r["boundary"] == boundary and r["bptt"] == bptt]
        lift = mean(rows, "recall") / mean(base, "recall") - 1
        name = "session-based" if boundary == "reset" else f"carry, bptt={bptt}"
        print(f"| {name} | {mean(rows, 'recall'):.4f} ({lift:+.1%}) | {mean(rows, 'mrr'):.4f} | "
              f"{mean(rows, 'recall_zero'):.4f} | {mean(rows, 'train_seconds'):.1f} | "
              f"{mean(rows, 'events_per_s'):.0f} |")


if __name__ == "__main__":
    main()
