"""Speed and memory grid for GRU4Rec training and evaluation; prints a table and JSON.

    python benchmarks/bench.py                                   # the full grid (long)
    python benchmarks/bench.py --batch-sizes 32 --layers 100 --items 37500 --steps 2000
    python benchmarks/bench.py --device cuda --static --out benchmarks/results/grid_cuda.json

For every combination of loss (bpr-max with ELU 0.5 and no embedding; cross-entropy with
logQ and the shared embedding), batch size, layer size and catalogue size it trains on the
package's synthetic generator (``--events`` events over ``--items`` items) for ``--steps``
mini-batches and reports mini-batches/s and events/s (the catalogue is padded to exactly
``--items`` items with ids that have no events); then it evaluates against the full
catalogue and reports predictions/s. Each grid point runs in its own process, so the peak
memory (RSS, and on CUDA the peak allocated device memory) is that point's alone.
Run nothing else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PRESETS, machine  # noqa: E402  (benchmarks/ is a folder, not a package)


def run_point(point: dict) -> dict:
    """Train ``point["steps"]`` mini-batches and evaluate; the measurements of one point."""
    from gru4rec import GRU4RecConfig, evaluate
    from gru4rec.data.sessions import ItemIndex, group_sessions
    from gru4rec.data.synthetic import make_sessions, train_test_split_last
    from gru4rec.model import GRU4Rec, resolve_device
    from gru4rec.nn.network import Network
    from gru4rec.training import Trainer

    device = resolve_device(point["device"])
    events = make_sessions(n_items=point["items"], n_sessions=point["events"] // 5,
                           mean_length=5.0, seed=0)
    train, test = train_test_split_last(events, 0.05)
    # the generator's popularity is skewed: a million items need many more events to all
    # occur, so the catalogue is filled up to --items with ids that have no events
    seen = np.unique(train.item)
    padding = -1 - np.arange(max(point["items"] - len(seen), 0), dtype=np.int64)
    index = ItemIndex.from_items(np.concatenate([seen, padding]))
    sessions, _ = group_sessions(train, index)
    support = np.bincount(sessions.items, minlength=len(index))
    cfg = GRU4RecConfig().replace(**PRESETS[point["loss"]], batch_size=point["batch_size"],
                                  layers=[point["layers"]], n_sample=2048, n_epochs=1)
    net = Network.initialize(len(index), cfg, torch.Generator().manual_seed(0), device)
    trainer = Trainer(net, cfg, sessions, support, seed=0, static=point["static"])
    trainer.sched.n_steps = min(point["steps"], trainer.sched.n_steps)
    res = trainer.run_epoch()
    n_events = trainer.sched.events_before(trainer.sched.n_steps)  # of the timed steps
    model = GRU4Rec(cfg, device=str(device))
    model.net_, model.item_index_, model.item_support_ = net, index, support
    for p in net.params.values():
        p.requires_grad_(False)
    test = _first_predictions(test, point["eval_predictions"])
    t0 = time.perf_counter()
    ev = evaluate(model, test, cutoffs=[20], mode="conservative")
    eval_s = time.perf_counter() - t0
    out = {**point, "n_items": len(index), "mb_per_s": round(res.batches_per_s, 1),
           "events_per_s": round(n_events / res.seconds), "train_steps": res.n_steps,
           "eval_predictions": ev.n_predictions,
           "eval_predictions_per_s": round(ev.n_predictions / eval_s),
           "backend": trainer.backend.name,
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if device.type == "cuda":
        out["peak_device_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    return out


def _first_predictions(events, n: int):
    """The test sessions (in file order) that give about n predictions (events - sessions)."""
    from gru4rec.data.events import Events

    _, first, counts = np.unique(events.session, return_index=True, return_counts=True)
    order = np.argsort(first)
    keep_sessions = np.unique(events.session)[order][np.cumsum(counts[order] - 1) <= n]
    keep = np.isin(events.session, keep_sessions)
    return Events(session=events.session[keep], item=events.item[keep],
                  time=events.time[keep])


def table(rows: list[dict]) -> str:
    """The grid as a Markdown table."""
    head = ("| loss | items | layers | batch | mb/s | events/s | eval pred/s | peak RSS MB |"
            "\n|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['loss']} | {r['n_items']:,} | {r['layers']} | {r['batch_size']} | "
             f"{r['mb_per_s']:,.0f} | {r['events_per_s']:,} | "
             f"{r['eval_predictions_per_s']:,} | {r['peak_rss_mb']:,} |" for r in rows]
    return "\n".join([head, *lines])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--losses", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 64, 128, 256])
    ap.add_argument("--layers", nargs="+", type=int, default=[100, 200])
    ap.add_argument("--items", nargs="+", type=int, default=[37_500, 1_000_000])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=2000, help="mini-batches timed per point")
    ap.add_argument("--eval-predictions", type=int, default=20_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--static", action="store_true",
                    help="fixed-shape steps (on CUDA: replayed as a CUDA graph)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one point, print JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_point(json.loads(args.one))))
        return
    rows, failed = [], 0
    grid = itertools.product(args.items, args.layers, args.losses, args.batch_sizes)
    for items, layers, loss, batch in grid:
        point = {"loss": loss, "items": items, "layers": layers, "batch_size": batch,
                 "events": args.events, "steps": args.steps, "device": args.device,
                 "static": args.static,
                 "eval_predictions": args.eval_predictions}
        proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"failed: {point}\n{proc.stderr[-2000:]}", file=sys.stderr)
            failed += 1
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    result = {"benchmark": "grid", "machine": machine(args.device), "rows": rows}
    print(table(rows))
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if failed:
        sys.exit(f"{failed} grid point(s) failed (see above)")


if __name__ == "__main__":
    main()
