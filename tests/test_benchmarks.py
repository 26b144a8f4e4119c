"""The benchmark scripts run and report what they claim (tiny sizes; no timings checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("loss", "static"), [("bpr-max", False), ("cross-entropy", True)])
def test_grid_point_reports_its_measurements(bench, loss: str, static: bool) -> None:
    point = {"loss": loss, "items": 800, "layers": 16, "batch_size": 8, "events": 6000,
             "steps": 30, "device": "cpu", "static": static, "eval_predictions": 60}
    row = bench.run_point(point)
    assert row["n_items"] == 800  # the catalogue is padded to the requested size
    assert row["train_steps"] == 30
    assert 0 < row["eval_predictions"] <= 60
    for key in ("mb_per_s", "events_per_s", "eval_predictions_per_s", "peak_rss_mb"):
        assert row[key] > 0, key
    assert row["events_per_s"] <= row["mb_per_s"] * 8 + 1  # at most B examples a step
    table = bench.table([row])
    assert table.splitlines()[2].startswith(f"| {loss} | 800 | 16 | 8 |")


def _module(name: str):  # noqa: ANN202  (a script of benchmarks/, loaded by path)
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_retrain_benchmark_splits_days_by_session_start_and_releases_items() -> None:
    retrain = _module("retrain")
    events = retrain._events("synthetic", Path("."), days=4)
    days = retrain._day_slices(events)
    assert len(days) == 4 and sum(len(d.item) for d in days) == len(events.item)
    sessions = [set(d.session.tolist()) for d in days]
    assert all(not (a & b) for i, a in enumerate(sessions) for b in sessions[i + 1:])
    seen = set(days[0].item.tolist())
    assert any(set(d.item.tolist()) - seen for d in days[1:])  # items released later


def test_the_baselines_benchmark_caps_the_test_set_and_reports_speeds() -> None:
    from gru4rec.data.synthetic import make_sessions, train_test_split_last

    speed = _module("baselines_speed")
    train, test = train_test_split_last(make_sessions(300, 800, seed=1), 0.2)
    capped = speed._cap(test, 50)
    targets = len(capped.item) - len(set(capped.session.tolist()))
    assert 0 < targets <= 50 and set(capped.session.tolist()) < set(test.session.tolist())
    row = speed._measure("vsknn", {"k": 20}, train, capped, runs=1)
    assert row["n_predictions"] == targets and row["params"]["k"] == 20
    for key in ("fit_seconds", "predictions_per_second", "recommend_sessions_per_second"):
        assert row[key] > 0, key
