"""Day by day: retraining the previous model on each new day against training from scratch
on every day so far; prints JSON and a table.

    python benchmarks/retrain.py --dataset yoochoose100k \\
        --out benchmarks/results/retrain_yoochoose100k_cpu.json
    python benchmarks/retrain.py --dataset synthetic \\
        --out benchmarks/results/retrain_synthetic_cpu.json

The log is split into days (of its own timestamps). A model trained on the first
``--initial-days`` days is the start; then for each following day d both

- **retrain**: the previous day's retrained model continues on day d's events only, or on
  the last ``--retrain-window`` days' (``fit(..., retrain=True)``: new items get rows, the
  optimiser continues), and
- **scratch**: a new model trains on days 0..d,

are evaluated on day d+1 (Recall@20 / MRR@20, conservative ties): over all predictions, and
over those whose target is an item first seen on day d (``evaluate(target_items=...)``).
Both use the same hyperparameters (``--preset``, default configs/rsc15_xe_logq_shared.py)
and seed; each training's time is reported. The synthetic log (``gru4rec.data.synthetic``)
gets new items over time: 70% of the items exist from day 0, the others are released on a
random later day, and their clicks before that day are removed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from stability import _preset  # noqa: E402  (one reader of the preset files)

DAY = 86_400.0


def _events(name: str, data_dir: Path, days: int) -> Any:
    from gru4rec.data.events import Events
    from gru4rec.data.io import read_events
    from gru4rec.data.synthetic import make_sessions

    if name == "yoochoose100k":
        folder = data_dir / "yoochoose100k"
        if not folder.is_dir():
            raise SystemExit(f"error: {folder} does not exist (pass --data-dir)")
        return _concat([read_events(folder / f"yoochoose-clicks-100k_{p}.txt")
                        for p in ("train_full", "test")])
    ev = make_sessions(n_items=5000, n_sessions=30_000, mean_length=5.0, seed=0,
                       time_span=days * DAY)
    rng = np.random.default_rng(1)
    items = np.unique(ev.item)
    release = np.where(rng.random(len(items)) < 0.7, 0, rng.integers(1, days, len(items)))
    day = ((ev.time - ev.time.min()) // DAY).astype(np.int64)
    keep = day >= release[np.searchsorted(items, ev.item)]
    return Events(ev.session[keep], ev.item[keep], ev.time[keep])


def _day_slices(events: Any) -> list[Any]:
    """Events of each day, sessions assigned to the day of their first event."""
    from gru4rec.data.events import Events

    _, inverse = np.unique(events.session, return_inverse=True)
    first = np.full(inverse.max() + 1, np.inf)
    np.minimum.at(first, inverse, events.time)
    day = ((first[inverse] - events.time.min()) // DAY).astype(np.int64)
    return [Events(events.session[day == d], events.item[day == d], events.time[day == d])
            for d in range(int(day.max()) + 1)]


def _concat(parts: list[Any]) -> Any:
    from gru4rec.data.events import Events

    return Events(*(np.concatenate([getattr(p, f) for p in parts])
                    for f in ("session", "item", "time")))


def _scores(model: Any, test: Any, new_items: np.ndarray) -> dict[str, float | None]:
    from gru4rec import evaluate
    from gru4rec.errors import DataError

    res = evaluate(model, test, cutoffs=[20], mode="conservative")
    out: dict[str, float | None] = {"recall20": res["Recall@20"], "mrr20": res["MRR@20"],
                                    "n": res.n_predictions, "recall20_new": None,
                                    "mrr20_new": None, "n_new": 0}
    try:
        new = evaluate(model, test, cutoffs=[20], mode="conservative",
                       target_items=new_items.tolist())
        out.update(recall20_new=new["Recall@20"], mrr20_new=new["MRR@20"],
                   n_new=new.n_predictions)
    except DataError:  # no target among the new items (or the model does not know them)
        pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("yoochoose100k", "synthetic"), required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--preset", default="rsc15_xe_logq_shared")
    ap.add_argument("--initial-days", type=int, default=3)
    ap.add_argument("--days", type=int, default=8, help="synthetic: days of the log")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--retrain-epochs", type=int, default=None,
                    help="epochs of each retraining (default: the preset's)")
    ap.add_argument("--retrain-lr", type=float, default=None,
                    help="learning rate of each retraining (default: the preset's)")
    ap.add_argument("--retrain-window", type=int, default=1, metavar="W",
                    help="retrain each day on the last W days' events (default 1: that day's)")
    ap.add_argument("--fresh-optimizer", action="store_true",
                    help="retrain from fresh optimiser state instead of the saved one")
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    from gru4rec import GRU4Rec, GRU4RecConfig

    days = _day_slices(_events(args.dataset, args.data_dir, args.days))
    config = GRU4RecConfig().replace(**_preset(args.preset))
    k = args.initial_days
    if not 1 <= k < len(days) - 1:
        raise SystemExit(f"error: --initial-days must be in 1..{len(days) - 2}")
    if args.retrain_window < 1:
        raise SystemExit("error: --retrain-window must be at least 1")
    start = time.perf_counter()
    model = GRU4Rec(config, device="cpu", seed=args.seed).fit(_concat(days[:k]))
    rows: list[dict[str, Any]] = [{"day": k - 1, "initial_seconds": time.perf_counter() - start}]
    for d in range(k, len(days) - 1):
        known = set(model.item_index_.ids.tolist())
        new_items = np.unique([i for i in np.unique(days[d].item) if i not in known])
        start = time.perf_counter()
        if args.retrain_epochs is not None:
            model.config = model.config.replace(n_epochs=args.retrain_epochs)
        if args.retrain_lr is not None:
            model.config = model.config.replace(learning_rate=args.retrain_lr)
        window = _concat(days[max(0, d - args.retrain_window + 1): d + 1])
        model.fit(window, retrain=True, fresh_optimizer=args.fresh_optimizer)
        retrain_s = time.perf_counter() - start
        start = time.perf_counter()
        scratch = GRU4Rec(config, device="cpu", seed=args.seed).fit(_concat(days[: d + 1]))
        scratch_s = time.perf_counter() - start
        row = {"day": d, "events": len(days[d].item), "new_items": len(new_items),
               "retrain": {**_scores(model, days[d + 1], new_items), "seconds": retrain_s},
               "scratch": {**_scores(scratch, days[d + 1], new_items), "seconds": scratch_s}}
        rows.append(row)
        print(f"day {d}: retrain R@20 {row['retrain']['recall20']:.4f} ({retrain_s:.1f}s), "
              f"scratch R@20 {row['scratch']['recall20']:.4f} ({scratch_s:.1f}s)",
              file=sys.stderr, flush=True)
    per_day = rows[1:]
    ratio = statistics.mean(r["retrain"]["recall20"] / r["scratch"]["recall20"]
                            for r in per_day)
    time_ratio = sum(r["retrain"]["seconds"] for r in per_day) / sum(
        r["scratch"]["seconds"] for r in per_day)
    summary = {"recall20_ratio_mean": ratio, "time_ratio": time_ratio}
    result = {"benchmark": "retrain", "dataset": args.dataset, "preset": args.preset,
              "seed": args.seed, "initial_days": k, "retrain_epochs": args.retrain_epochs,
              "retrain_lr": args.retrain_lr, "retrain_window": args.retrain_window,
              "fresh_optimizer": args.fresh_optimizer, "days": rows, "summary": summary}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    lines = ["| day | events | new items | retrain R@20 / MRR@20 | scratch R@20 / MRR@20 "
             "| new-item targets: retrain R@20 / scratch R@20 (n) | retrain s | scratch s |",
             "|---" * 8 + "|"]
    for r in per_day:
        a, b = r["retrain"], r["scratch"]
        new = (f"{a['recall20_new']:.4f} / {b['recall20_new']:.4f} ({a['n_new']})"
               if a["recall20_new"] is not None and b["recall20_new"] is not None else "-")
        lines.append(f"| {r['day']} | {r['events']} | {r['new_items']} | {a['recall20']:.4f} / "
                     f"{a['mrr20']:.4f} | {b['recall20']:.4f} / {b['mrr20']:.4f} | {new} | "
                     f"{a['seconds']:.1f} | {b['seconds']:.1f} |")
    lines.append(f"\nretrain / scratch: Recall@20 {ratio:.3f} on average over the days, "
                 f"training time {time_ratio:.3f}")
    print("\n".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
