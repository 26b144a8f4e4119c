"""How far the suite's accuracy tests clear their thresholds, on the backend this process
gets (run it once per kernel variant: ``GRU4REC_KERNELS=generic|avx2|avx512``, and with
``GRU4REC_NATIVE=0``).

    python scripts/accuracy_margins.py [--realdata ../shared/data/yoochoose100k]

Recomputes each measured value exactly as its test does (same data, settings and seed) and
prints it with the threshold and the margin, closest first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import SMALL, make_successor_events  # noqa: E402
from gru4rec import GRU4Rec, evaluate  # noqa: E402
from gru4rec.kernels import kernels_info  # noqa: E402


def _recall1(train: object, test: object, **params: object) -> float:
    model = GRU4Rec(device="cpu", seed=42, **{**SMALL, "n_epochs": 6, **params}).fit(train)
    return float(evaluate(model, test, cutoffs=[1])["Recall@1"])


Row = tuple[str, float, float, float | None]


def _rows(realdata: Path | None) -> list[Row]:
    """(test, value, low bound, high bound or None) of every threshold."""
    import test_model
    import test_options
    import test_realdata

    train = make_successor_events(n_items=50, n_sessions=300, length=6, seed=0)
    test = make_successor_events(n_items=50, n_sessions=100, length=6, seed=1)
    rows: list[Row] = []
    for name, opt in test_options.OPTIONS.items():
        rows.append((f"test_options[{name}]", _recall1(train, test, **opt), 0.9, None))
    for loss in ("cross-entropy", "bpr-max"):
        for mode, extra in test_model.EMBEDDINGS.items():
            rows.append((f"test_model successor[{loss}-{mode}]",
                         _recall1(train, test, loss=loss, **extra), 0.95, None))
    rows.append(("test_fixed_shapes estimator", _recall1(train, test, static_shapes=True),
                 0.95, None))
    if realdata is not None:
        model = GRU4Rec(device="cpu", seed=42, **test_realdata.PARAMS).fit(
            realdata / "yoochoose-clicks-100k_train_full.txt")
        res = evaluate(model, realdata / "yoochoose-clicks-100k_test.txt", cutoffs=[5, 20],
                       mode="conservative")
        rows.append(("test_realdata Recall@20", res["Recall@20"], *test_realdata.RECALL_20_BAND))
        rows.append(("test_realdata MRR@20", res["MRR@20"], *test_realdata.MRR_20_BAND))
    return rows


def _margin(row: Row) -> float:
    """Distance of the value to the nearest bound."""
    _, value, lo, hi = row
    return value - lo if hi is None else min(value - lo, hi - value)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realdata", type=Path, default=None)
    args = ap.parse_args()
    print(f"# {kernels_info()}")
    rows = _rows(args.realdata)
    for name, value, lo, hi in sorted(rows, key=_margin):
        bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        print(f"{name:40s} {value:.4f}  {bounds:18s} margin {_margin((name, value, lo, hi)):+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
