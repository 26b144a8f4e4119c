"""Speed of the baselines on the synthetic 1M-event / 37,500-item log; prints JSON.

    python benchmarks/baselines_speed.py --models vsknn sr --out benchmarks/results/baselines_speed_cpu.json

For each model (and preset): the fit time on the training part, and predictions/s of the
evaluator (every next-item prediction of test sessions, each ranked against the full
catalogue) and of ``recommend`` (top-20 lists for whole sessions), medians of ``--runs``.
The test part is the sessions starting in the last 10% of the time range, capped at
``--max-predictions``. Run nothing else meanwhile: on few cores the numbers mean little.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from gru4rec.baselines import make_baseline
from gru4rec.data.synthetic import make_sessions, train_test_split_last
from gru4rec.evaluation import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402  (benchmarks/ is a folder, not a package)

# the settings measured: the code defaults and session-rec's rsc15-100k preset
SETTINGS = {
    "vsknn": {"default": {}, "rsc15_100k": {"k": 500, "sample_size": 5000,
                                            "weighting": "quadratic", "idf_weighting": 5}},
    "sknn": {"default": {}, "rsc15_100k": {"k": 100, "sample_size": 500,
                                           "similarity": "cosine"}},
    "sr": {"default": {}, "rsc15_100k": {"steps": 20, "weighting": "quadratic"}},
    "ar": {"default": {}}, "markov": {"default": {}}, "itemknn": {"default": {}},
    "pop": {"default": {}}, "spop": {"default": {}}, "random": {"default": {}},
    "bprmf": {"default": {}},
}


def _cap(test, max_predictions: int):  # noqa: ANN001, ANN202  (Events in, Events out)
    """The first test sessions (in file order) holding about ``max_predictions`` targets."""
    _, first, counts = np.unique(test.session, return_index=True, return_counts=True)
    order = np.argsort(first)
    keep_sessions = order[np.cumsum(counts[order] - 1) <= max_predictions]
    keep = np.isin(test.session, np.unique(test.session)[keep_sessions])
    return test.select(keep)


def _measure(name: str, params: dict, train, test, runs: int) -> dict:  # noqa: ANN001
    fits, evals, recs = [], [], []
    sessions = [test.item[test.session == s].tolist() for s in np.unique(test.session)[:2048]]
    for _ in range(runs):
        t0 = time.perf_counter()
        model = make_baseline(name, params).fit(train)
        fits.append(time.perf_counter() - t0)
        result = evaluate(model, test, cutoffs=[20], mode="conservative")
        evals.append(result.n_predictions / result.seconds)
        t0 = time.perf_counter()
        for lo in range(0, len(sessions), 512):
            model.recommend(sessions[lo:lo + 512], k=20)
        recs.append(len(sessions) / (time.perf_counter() - t0))
    return {"params": model.get_params(), "fit_seconds": statistics.median(fits),
            "predictions_per_second": statistics.median(evals),
            "recommend_sessions_per_second": statistics.median(recs),
            "n_predictions": result.n_predictions, "recall@20": result["Recall@20"],
            "mrr@20": result["MRR@20"], "runs": runs, "fit_all": fits, "eval_all": evals}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["vsknn", "sr"], choices=sorted(SETTINGS))
    ap.add_argument("--n-items", type=int, default=37_500)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--max-predictions", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    events = make_sessions(n_items=args.n_items, n_sessions=args.events // 5, mean_length=5.0,
                           seed=0)
    train, test = train_test_split_last(events, 0.1)
    test = _cap(test, args.max_predictions)
    report = {"machine": machine("cpu"), "n_items": args.n_items, "events": len(events),
              "train_events": len(train), "test_events": len(test), "results": {}}
    for name in args.models:
        for label, params in SETTINGS[name].items():
            row = _measure(name, params, train, test, args.runs)
            report["results"][f"{name}:{label}"] = row
            print(f"{name}:{label}: fit {row['fit_seconds']:.1f}s, "
                  f"{row['predictions_per_second']:,.0f} predictions/s, "
                  f"recommend {row['recommend_sessions_per_second']:,.0f} sessions/s",
                  file=sys.stderr, flush=True)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
