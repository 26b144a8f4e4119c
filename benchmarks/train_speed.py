"""Training speed of one GRU4Rec epoch on the package's synthetic data; prints JSON.

    python benchmarks/train_speed.py --loss bpr-max --batch-size 32 --layers 100 \
        --n-items 37500 --events 1000000 --runs 3

Reports mini-batches/s and events/s per run and their median, with the machine description.
Run nothing else on the machine meanwhile: on few cores, a second PyTorch process makes
the numbers meaningless.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gru4rec import GRU4RecConfig
from gru4rec.data.sessions import ItemIndex, group_sessions
from gru4rec.data.synthetic import make_sessions
from gru4rec.model import resolve_device
from gru4rec.nn.network import Network
from gru4rec.training import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PRESETS, machine  # noqa: E402  (benchmarks/ is a folder, not a package)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loss", choices=sorted(PRESETS), default="bpr-max")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--layers", type=int, default=100)
    ap.add_argument("--n-sample", type=int, default=2048)
    ap.add_argument("--n-items", type=int, default=37_500)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--static", action="store_true",
                    help="fixed-shape steps (on CUDA: replayed as a CUDA graph)")
    args = ap.parse_args()

    device = resolve_device(args.device)
    t0 = time.perf_counter()
    events = make_sessions(n_items=args.n_items, n_sessions=args.events // 5, mean_length=5.0,
                           seed=0)
    index = ItemIndex.from_items(events.item)
    sessions, _ = group_sessions(events, index)
    support = np.bincount(sessions.items, minlength=len(index))
    data_s = time.perf_counter() - t0
    cfg = GRU4RecConfig().replace(**PRESETS[args.loss], batch_size=args.batch_size,
                                  layers=[args.layers], n_sample=args.n_sample, n_epochs=1)
    runs = []
    backend = ""
    for run in range(args.runs):
        net = Network.initialize(len(index), cfg, torch.Generator().manual_seed(run), device)
        trainer = Trainer(net, cfg, sessions, support, seed=run, static=args.static)
        backend = trainer.backend.name
        res = trainer.run_epoch()
        runs.append({"mb_per_s": round(res.batches_per_s, 1),
                     "events_per_s": round(res.events_per_s), "seconds": round(res.seconds, 2),
                     "loss": round(res.loss, 6)})
    out = {
        "benchmark": "train_epoch",
        "config": {"loss": args.loss, "batch_size": args.batch_size, "layers": args.layers,
                   "n_sample": args.n_sample, "static": args.static},
        "data": {"n_items": len(index), "events": len(events),
                 "examples": sessions.n_examples(), "prepare_s": round(data_s, 2)},
        "machine": {**machine(device), "backend": backend},
        "runs": runs,
        "median_mb_per_s": statistics.median(r["mb_per_s"] for r in runs),
        "median_events_per_s": statistics.median(r["events_per_s"] for r in runs),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
