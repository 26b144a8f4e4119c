"""``gru4rec demo``: a self-contained tour in well under a minute on a laptop CPU.

It generates a synthetic click log with sequential structure (every item has a few
"successor" items that usually come next), trains a small GRU4Rec on the older sessions,
evaluates it on the newest ones next to a most-popular baseline, and shows the top-5
recommendations for two test sessions.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from gru4rec.cli.arguments import Subparsers, at_least

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from gru4rec.data.events import Events
    from gru4rec.model import GRU4Rec

__all__ = ["add_parser", "execute"]

CUTOFFS = (5, 20)
# Settings that learn the synthetic successor structure in two short epochs on a CPU.
DEMO_PARAMS: dict[str, Any] = {
    "loss": "cross-entropy", "constrained_embedding": True, "batch_size": 32,
    "n_sample": 512, "sample_alpha": 0.5, "logq": 1.0, "learning_rate": 0.1,
    "momentum": 0.2, "dropout_p_embed": 0.0, "dropout_p_hidden": 0.0,
}


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to ``subparsers`` and return its parser."""
    p = subparsers.add_parser(
        "demo", help="train and evaluate on synthetic data in a few seconds",
        description="Generate synthetic sessions, train a small GRU4Rec on them, compare it "
                    "with a most-popular baseline and show example recommendations. The "
                    "size flags make it smaller (faster) or bigger.")
    p.add_argument("--items", type=at_least(10), default=1000,
                   help="Number of items in the synthetic catalogue. (Default: 1000)")
    p.add_argument("--sessions", type=at_least(50), default=8000,
                   help="Number of synthetic sessions (about 5 clicks each; the newest 10%% "
                        "are the test set). (Default: 8000)")
    p.add_argument("--epochs", type=at_least(1), default=2,
                   help="Training epochs. (Default: 2)")
    p.add_argument("--layers", type=at_least(1), default=100,
                   help="Units of the GRU layer. (Default: 100)")
    p.add_argument("--seed", type=int, default=0,
                   help="Seed of the data generator and of training. (Default: 0)")
    p.add_argument("-d", "--device", metavar="DEVICE",
                   help="cpu, cuda or cuda:N. (Default: cuda when available, else cpu)")
    p.add_argument("--threads", type=at_least(0), default=1,
                   help="CPU threads for PyTorch; 0 keeps PyTorch's default. The demo model "
                        "is so small that one thread is about as fast as several and is not "
                        "slowed down by other busy programs. (Default: 1)")
    return p


def _say(text: str = "") -> None:
    print(text, flush=True)


def _describe(name: str, events: Events) -> str:
    import numpy as np

    n_sessions = len(np.unique(events.session))
    n_items = len(np.unique(events.item))
    return (f"  {name:<5} {len(events):>8,} events  {n_sessions:>6,} sessions  "
            f"{n_items:>5,} items")


def _ordered(events: Events) -> tuple[np.ndarray, np.ndarray]:
    """Session ids and item ids sorted by session, then time."""
    import numpy as np

    order = np.lexsort((events.time, events.session))
    return events.session[order], events.item[order]


def popularity_metrics(train: Events, test: Events,
                       cutoffs: tuple[int, ...] = CUTOFFS) -> dict[str, float]:
    """Recall@k and MRR@k of recommending the most clicked training items to everyone.

    Every test event but the first of its session is a target; ties in the click counts
    are counted against the target (conservative), like the model's evaluation. The metrics
    are those of :class:`~gru4rec.metrics.MetricAccumulator`, as for the model.
    """
    import numpy as np
    import torch

    from gru4rec.metrics import MetricAccumulator

    items, counts = np.unique(train.item, return_counts=True)
    session, item = _ordered(test)
    targets = item[np.r_[False, session[1:] == session[:-1]]]
    pos = np.clip(np.searchsorted(items, targets), 0, len(items) - 1)
    known = items[pos] == targets
    target_count = np.where(known, counts[pos], 0)
    ranks = len(items) - np.searchsorted(np.sort(counts), target_count, side="left")
    ranks = np.where(known, ranks, len(items) + 1)  # unseen items are never recommended
    acc = MetricAccumulator(cutoffs)
    acc.update(torch.as_tensor(ranks, dtype=torch.float64))
    metrics = acc.result()
    metrics.pop("n")
    return metrics


def _make_data(args: argparse.Namespace) -> tuple[Events, Events]:
    from gru4rec.data.synthetic import make_sessions, train_test_split_last

    events = make_sessions(args.items, args.sessions, seed=args.seed)
    train, test = train_test_split_last(events, test_fraction=0.1)
    _say(f"Synthetic click log: {args.items:,} items, {args.sessions:,} sessions (seed "
         f"{args.seed}). Each click usually (70%) goes to one of the previous item's 2-4 "
         "successor items, otherwise to a popular item.")
    _say("The newest 10% of the sessions are the test set:")
    _say(_describe("train", train))
    _say(_describe("test", test))
    return train, test


def _train(args: argparse.Namespace, train: Events) -> GRU4Rec:
    from gru4rec.cli.progress import fit_with_progress
    from gru4rec.model import GRU4Rec

    # a 1M-id sample store covers an epoch of the default demo; the usual 10M would take
    # longer to draw than the training itself
    model = GRU4Rec(device=args.device, seed=args.seed, layers=[args.layers],
                    n_epochs=args.epochs, sample_store_size=1_000_000, **DEMO_PARAMS)
    shown = ", ".join(f"{k}={v}" for k, v in
                      {"layers": args.layers, "n_epochs": args.epochs, **DEMO_PARAMS}.items())
    _say()
    _say(f"Training GRU4Rec on {model.device.type} ({shown})")
    seconds = fit_with_progress(model, train, _say)
    _say(f"Total training time: {seconds:.2f}s")
    return model


def _compare(model: GRU4Rec, train: Events, test: Events) -> None:
    from gru4rec.cli.progress import StepProgress
    from gru4rec.evaluation import evaluate

    _say()
    _say("Evaluating next-item predictions on the test sessions (conservative ties)...")
    with StepProgress("Evaluating") as bar:
        result = evaluate(model, test, cutoffs=CUTOFFS, mode="conservative", progress=bar)
    for line in result.lines():
        _say(line)
    pop = popularity_metrics(train, test)
    cols = [f"{m}@{k}" for k in CUTOFFS for m in ("Recall", "MRR")]
    _say()
    _say(f"  {'':<14}" + "".join(f"{c:>11}" for c in cols))
    for name, metrics in (("GRU4Rec", result.metrics), ("most popular", pop)):
        _say(f"  {name:<14}" + "".join(f"{metrics[c]:>11.4f}" for c in cols))
    k = max(CUTOFFS)
    base = pop[f"Recall@{k}"]
    ratio = f"{result[f'Recall@{k}'] / base:.1f}x" if base > 0 else "far above"
    _say(f"GRU4Rec's Recall@{k} is {ratio} that of recommending the {k} most popular items: "
         "it has learned which items follow which.")


def _examples(model: GRU4Rec, test: Events, n: int = 2, k: int = 5) -> None:
    """Top-k recommendations after all but the last click of the first n test sessions
    with 3+ clicks, next to the click that really came."""
    import numpy as np

    session, item = _ordered(test)
    starts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    ends = np.r_[starts[1:], len(session)]
    picked = [(s, e) for s, e in zip(starts, ends, strict=True) if e - s >= 3][:n]
    if not picked:
        return
    prefixes = [item[s:e - 1].tolist() for s, e in picked]
    ids, scores = model.recommend(prefixes, k=k)
    _say()
    _say(f"Top-{k} recommendations for {len(picked)} test sessions (after all but their "
         "last click):")
    for (s, e), prefix, rec, sc in zip(picked, prefixes, ids, scores, strict=True):
        actual = item[e - 1]
        _say(f"  session {session[s]}: " + " -> ".join(str(i) for i in prefix))
        _say(f"    actual next item: {actual}")
        for rank, (i, v) in enumerate(zip(rec, sc, strict=True), start=1):
            mark = "   <- the actual next item" if i == actual else ""
            _say(f"    {rank}. item {i}  score {v:.3f}{mark}")


def execute(args: argparse.Namespace) -> int:
    """Run the demo; library errors propagate to ``main`` (exit code 2)."""
    import torch

    from gru4rec.model import resolve_device

    start = time.perf_counter()
    args.device = str(resolve_device(args.device))
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)  # tiny matrices: extra threads mostly wait
    try:
        train, test = _make_data(args)
        model = _train(args, train)
        _compare(model, train, test)
        _examples(model, test)
    finally:
        torch.set_num_threads(threads)  # leave the process as it was (in-process callers)
    _say()
    _say(f"Demo finished in {time.perf_counter() - start:.1f}s. Next: gru4rec run --help")
    return 0
