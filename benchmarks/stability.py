"""How the RSC15 presets depend on the seed, with Adagrad's accumulator started at 0 (the
original) or at a small value (``adagrad_init``); prints JSON and a table.

    python benchmarks/stability.py --out benchmarks/results/stability_cpu.json \\
        [--datasets yoochoose100k synthetic] [--presets rsc15_bprmax ...] \\
        [--values 0 1e-5 1e-4 1e-3 1e-2] [--seeds 1 2 3 4 5] [--synthetic-epochs 1]

Every (dataset, preset, adagrad_init, seed) run trains one model (10 epochs on yoochoose100k,
``--synthetic-epochs`` on the synthetic 1M-event / 37,500-item set) and evaluates Recall@20
and MRR@20 with conservative ties, one run after the other. Two studies can share a small
machine with ``OMP_NUM_THREADS=1`` each and their own ``--out`` (the thread count is stored
with every run: it changes the order of float sums, hence a single seed's path). Each
finished run is written to ``--out`` right away and skipped when the script runs again with
the same file, so a long study can be spread over several sittings (runs with another
``--synthetic-epochs`` are kept beside the others). The table gives, per (dataset, epochs,
preset, value), the mean, min and max over the seeds of Recall@20, MRR@20 and the first
epoch's loss; a second, compact one per dataset has the values across.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ["rsc15_bprmax", "rsc15_bprmax_shared", "rsc15_xe", "rsc15_xe_logq_shared",
           "rsc15_xe_logq_shared_b64"]


def _preset(name: str) -> dict[str, Any]:
    """The gru4rec_params of configs/NAME.py (read as literals)."""
    tree = ast.parse((ROOT / "configs" / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == \
                "gru4rec_params":
            return dict(ast.literal_eval(node.value.args[0]))  # type: ignore[attr-defined]
    raise SystemExit(f"configs/{name}.py has no gru4rec_params")


def _datasets(names: list[str], data_dir: Path) -> dict[str, tuple[Any, Any, int | None]]:
    """name -> (train, test, epochs or None for the preset's)."""
    from gru4rec.data.synthetic import make_sessions, train_test_split_last

    out: dict[str, tuple[Any, Any, int | None]] = {}
    for name in names:
        if name == "yoochoose100k":
            folder = data_dir / "yoochoose100k"
            if not folder.is_dir():
                raise SystemExit(f"error: {folder} does not exist (pass --data-dir)")
            out[name] = (folder / "yoochoose-clicks-100k_train_full.txt",
                         folder / "yoochoose-clicks-100k_test.txt", None)
        elif name == "synthetic":
            events = make_sessions(n_items=37_500, n_sessions=200_000, mean_length=5.0, seed=0)
            train, test = train_test_split_last(events, 0.05)
            out[name] = (train, test, -1)  # epochs from --synthetic-epochs
        else:
            raise SystemExit(f"error: unknown dataset {name!r} (yoochoose100k, synthetic)")
    return out


def _run(train: Any, test: Any, params: dict[str, Any], seed: int) -> dict[str, float]:
    import torch

    from gru4rec import GRU4Rec, GRU4RecConfig, evaluate

    model = GRU4Rec(GRU4RecConfig().replace(**params), device="cpu", seed=seed).fit(train)
    res = evaluate(model, test, cutoffs=[20], mode="conservative")
    return {"recall20": res["Recall@20"], "mrr20": res["MRR@20"],
            "loss1": model.history_[0].loss, "loss_last": model.history_[-1].loss,
            # the thread count changes the order of float sums, hence a seed's trajectory
            "threads": torch.get_num_threads()}


def _save(path: Path, runs: dict[str, dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump({"benchmark": "stability", "runs": runs}, fh, indent=1)
    os.replace(tmp, path)


def _table(runs: dict[str, dict[str, Any]]) -> list[str]:
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for run in runs.values():
        groups.setdefault((run["dataset"], run["n_epochs"], run["preset"], run["adagrad_init"]),
                          []).append(run)
    lines = ["| dataset | epochs | preset | adagrad_init | seeds | Recall@20 mean (min-max) "
             "| MRR@20 mean (min-max) | epoch-1 loss mean (min-max) |", "|---" * 8 + "|"]
    for (data, epochs, preset, value), group in sorted(groups.items()):
        cells = []
        for key in ("recall20", "mrr20", "loss1"):
            vals = [r[key] for r in group]
            cells.append(f"{statistics.mean(vals):.4f} ({min(vals):.4f}-{max(vals):.4f})")
        lines.append(f"| {data} | {epochs} | {preset} | {value:g} | {len(group)} | "
                     + " | ".join(cells) + " |")
    return lines


def _pivot(runs: dict[str, dict[str, Any]]) -> list[str]:
    """One table per (dataset, epochs): presets down, adagrad_init across, each cell
    "Recall@20 mean (min-max) / MRR@20 mean"."""
    cells: dict[tuple[str, int], dict[str, dict[float, list[dict[str, Any]]]]] = {}
    for run in runs.values():
        (cells.setdefault((run["dataset"], run["n_epochs"]), {})
         .setdefault(run["preset"], {}).setdefault(run["adagrad_init"], []).append(run))
    lines: list[str] = []
    for (data, epochs), by_preset in sorted(cells.items()):
        values = sorted({v for group in by_preset.values() for v in group})
        lines += ["", f"{data}, {epochs} epoch{'s' if epochs > 1 else ''}: Recall@20 mean "
                  "(min-max) / MRR@20 mean over the seeds", "",
                  "| preset | " + " | ".join(f"{v:g}" for v in values) + " |",
                  "|---" * (len(values) + 1) + "|"]
        for preset, group in sorted(by_preset.items()):
            row = []
            for v in values:
                rec = [r["recall20"] for r in group.get(v, [])]
                mrr = [r["mrr20"] for r in group.get(v, [])]
                row.append(f"{statistics.mean(rec):.4f} ({min(rec):.3f}-{max(rec):.3f}) / "
                           f"{statistics.mean(mrr):.4f}" if rec else "")
            lines.append(f"| {preset} | " + " | ".join(row) + " |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--datasets", nargs="+", default=["yoochoose100k", "synthetic"])
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument("--values", nargs="+", type=float, default=[0, 1e-5, 1e-4, 1e-3, 1e-2])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--synthetic-epochs", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    runs: dict[str, dict[str, Any]] = {}
    if args.out.exists():
        runs = json.loads(args.out.read_text())["runs"]
    datasets = _datasets(args.datasets, args.data_dir)
    for data, (train, test, epochs) in datasets.items():
        for preset in args.presets:
            base = _preset(preset)
            if epochs == -1:
                base["n_epochs"] = args.synthetic_epochs
            for value in args.values:
                for seed in args.seeds:
                    key = f"{data}|{base['n_epochs']}|{preset}|{value:g}|{seed}"
                    if key in runs:
                        continue
                    result = _run(train, test, {**base, "adagrad_init": value}, seed)
                    runs[key] = {"dataset": data, "preset": preset, "adagrad_init": value,
                                 "seed": seed, "n_epochs": base["n_epochs"], **result}
                    print(f"{key}: Recall@20 {result['recall20']:.4f} MRR@20 "
                          f"{result['mrr20']:.4f} epoch-1 loss {result['loss1']:.4f}",
                          file=sys.stderr, flush=True)
                    _save(args.out, runs)
    print(json.dumps({"benchmark": "stability", "runs": runs}))
    print("\n".join(_table(runs) + _pivot(runs)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
