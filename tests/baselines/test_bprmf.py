"""BPR-MF: the documented draw order and update rule replayed step by step, the prediction
formula on hand-set factors, plain-Python SGD (sequential, and the batch semantics) on random
logs, and the estimator manners (save/load, bad parameters, unknown items)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gru4rec.baselines import Baseline, make_baseline
from gru4rec.baselines.bprmf import BPRMF
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError


def events_of(sessions: list[list[int]], session_ids: list[int] | None = None) -> Events:
    """Events of ``sessions`` (lists of item ids) in this file order, times increasing."""
    ids = session_ids if session_ids is not None else list(range(len(sessions)))
    sess = np.concatenate([np.full(len(s), i, dtype=np.int64) for i, s in zip(ids, sessions,
                                                                               strict=True)])
    item = np.concatenate([np.asarray(s, dtype=np.int64) for s in sessions])
    return Events(session=sess, item=item, time=np.arange(len(item), dtype=np.float64))


def sorted_log(sessions: list[list[int]], session_ids: list[int]
               ) -> tuple[list[int], list[int], list[int]]:
    """The training log as the model sees it: sessions by id, items as first-appearance
    indices -> (session index, item index) per event, and the item ids by index."""
    index = {i: k for k, i in enumerate(dict.fromkeys(i for s in sessions for i in s))}
    by_id = sorted(zip(session_ids, sessions, strict=True))
    sess = [k for k, (_, s) in enumerate(by_id) for _ in s]
    items = [index[i] for _, s in by_id for i in s]
    return sess, items, list(index)


def draws(seed: int, shape: tuple[int, int, int], n_events: int, epochs: int,
          params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[tuple[Any, Any]]]:
    """The documented draw order: I (items x F), U (sessions x F), then per epoch the
    permutation of the events and the negatives -> (I, U, [(perm, negatives)] per epoch)."""
    n_items, n_sessions, f = shape
    rng = np.random.default_rng(seed)
    sigma = params.get("sigma", 0.05)

    def init(rows: int) -> np.ndarray:
        if params.get("init_normal", False):
            return rng.normal(0.0, sigma, (rows, f))
        return rng.uniform(-sigma, sigma, (rows, f))

    items_f, sess_f = init(n_items), init(n_sessions)
    epochs_drawn = [(rng.permutation(n_events), rng.integers(0, n_items, size=n_events))
                    for _ in range(epochs)]
    return items_f, sess_f, epochs_drawn


# ------------------------------------------------------------------ known answers

# session 5: 10 20 10, session 8: 30; item index 10 -> 0, 20 -> 1, 30 -> 2
TINY = [[10, 20, 10], [30]]
TINY_PARAMS = {"n_factors": 2, "n_iterations": 2, "learning_rate": 0.5,
               "lambda_session": 0.1, "lambda_item": 0.2, "sigma": 0.5, "batch_size": 1,
               "item_bias": True}


def test_training_replays_the_documented_steps_exactly() -> None:
    model = BPRMF(seed=11, **TINY_PARAMS).fit(events_of(TINY, [5, 8]))
    sess, items = [0, 0, 0, 1], [0, 1, 0, 2]
    item_f, sess_f, epochs = draws(11, (3, 2, 2), 4, 2, TINY_PARAMS)
    bias = np.zeros(3)
    lr, lam_u, lam_i = 0.5, 0.1, 0.2
    for perm, negatives in epochs:
        for k, ev in enumerate(perm):
            s, p, n = sess[ev], items[ev], int(negatives[k])
            u, ip, i_n, bp, bn = sess_f[s].copy(), item_f[p].copy(), item_f[n].copy(), \
                bias[p], bias[n]
            x = u[0] * (ip[0] - i_n[0]) + u[1] * (ip[1] - i_n[1]) + bp - bn
            # g = 1 - sigmoid(x) = 1 / (1 + exp(x)), with NumPy's exp as the model uses
            # (libm's math.exp may differ from it in the last bit)
            g = 1.0 / (1.0 + np.exp(np.array([x]))[0])
            sess_f[s] = u + lr * (g * (ip - i_n) - lam_u * u)
            item_f[p] = ip + lr * (g * u - lam_i * ip)
            item_f[n] = item_f[n] + lr * (-g * u - lam_i * i_n)  # n == p: both updates add
            bias[p] = bp + lr * (g - lam_i * bp)
            bias[n] = bias[n] + lr * (-g - lam_i * bn)
    np.testing.assert_array_equal(model.item_factors_, item_f)
    np.testing.assert_array_equal(model.session_factors_, sess_f)
    np.testing.assert_array_equal(model.item_bias_, bias)
    assert np.any(bias != 0)


def test_by_default_the_bias_stays_zero_as_in_the_reference() -> None:
    params = {k: v for k, v in TINY_PARAMS.items() if k != "item_bias"}
    model = BPRMF(seed=11, **params).fit(events_of(TINY, [5, 8]))
    np.testing.assert_array_equal(model.item_bias_, np.zeros(3))


def test_prediction_formula_on_set_factors() -> None:
    model = BPRMF(n_factors=2, n_iterations=0).fit(events_of(TINY))
    model.item_factors_ = np.array([[1.0, 2.0], [0.5, -1.0], [-2.0, 0.25]])
    model.item_bias_ = np.array([0.5, -0.25, 1.0])
    scores = model.score([np.array([0, 1]), np.array([0, 0, 1, 2]), np.array([], int)])
    # [0, 1]: u = ([1, 2] + [0.5, -1]) / 2 = [0.75, 0.5]
    #   s = [0.75 + 1 + 0.5, 0.375 - 0.5 - 0.25, -1.5 + 0.125 + 1] = [2.25, -0.375, -0.375]
    # [0, 0, 1, 2]: u = [1 + 1 + 0.5 - 2, 2 + 2 - 1 + 0.25] / 4 = [0.125, 0.8125]
    #   s = [0.125 + 1.625 + 0.5, 0.0625 - 0.8125 - 0.25, -0.25 + 0.203125 + 1]
    # []: u = 0, s = b
    np.testing.assert_array_equal(scores, [[2.25, -0.375, -0.375], [2.25, -1.0, 0.953125],
                                           [0.5, -0.25, 1.0]])


# ------------------------------------------------------------------ differential


def sigmoid_complement(x: float) -> float:
    """1 - sigmoid(x)."""
    return 1.0 - 1.0 / (1.0 + math.exp(-x))


def plain_epoch(tables: tuple[list[list[float]], list[list[float]], list[float]],
                visits: list[tuple[int, int, int]], params: dict[str, Any], batch: int) -> None:
    """BASELINES.md §1's update with lists: each batch's updates from its start values."""
    sess_f, item_f, bias = tables
    lr, lam_u, lam_i = params["learning_rate"], params["lambda_session"], params["lambda_item"]
    for lo in range(0, len(visits), batch):
        adds: list[tuple[list[Any], int, Any]] = []  # (table, row, delta)
        negs: list[tuple[list[Any], int, Any]] = []
        for s, p, n in visits[lo:lo + batch]:
            u, ip, i_n = list(sess_f[s]), list(item_f[p]), list(item_f[n])
            x = sum(a * (b - c) for a, b, c in zip(u, ip, i_n, strict=True)) + bias[p] - bias[n]
            g = sigmoid_complement(x)
            adds.append((sess_f, s, [lr * (g * (b - c) - lam_u * a)
                                     for a, b, c in zip(u, ip, i_n, strict=True)]))
            adds.append((item_f, p, [lr * (g * a - lam_i * b) for a, b in zip(u, ip,
                                                                                strict=True)]))
            negs.append((item_f, n, [lr * (-g * a - lam_i * c) for a, c in zip(u, i_n,
                                                                                 strict=True)]))
            if params["item_bias"]:
                adds.append((bias, p, lr * (g - lam_i * bias[p])))
                negs.append((bias, n, lr * (-g - lam_i * bias[n])))
        for table, row, delta in adds + negs:
            table[row] = [a + d for a, d in zip(table[row], delta, strict=True)] \
                if isinstance(delta, list) else table[row] + delta


def plain_bpr(sessions: list[list[int]], sids: list[int], seed: int,
              params: dict[str, Any]) -> tuple[list[list[float]], list[float], list[int]]:
    """Plain-Python BPR-MF training -> (item factors, item biases, item ids by index)."""
    sess, items, ids = sorted_log(sessions, sids)
    item_np, sess_np, epochs = draws(seed, (len(ids), len(sessions), params["n_factors"]),
                                     len(items), params["n_iterations"], params)
    item_f, sess_f, bias = item_np.tolist(), sess_np.tolist(), [0.0] * len(ids)
    for perm, negatives in epochs:
        visits = [(sess[ev], items[ev], int(negatives[k])) for k, ev in enumerate(perm)]
        plain_epoch((sess_f, item_f, bias), visits, params, params["batch_size"])
    return item_f, bias, ids


def plain_scores(item_f: list[list[float]], bias: list[float], prefix: list[int]
                 ) -> list[float]:
    """s_j = i_j . mean(prefix factors) + b_j."""
    f = len(item_f[0])
    u = [sum(item_f[i][k] for i in prefix) / len(prefix) if prefix else 0.0 for k in range(f)]
    return [sum(a * b for a, b in zip(row, u, strict=True)) + b_j
            for row, b_j in zip(item_f, bias, strict=True)]


@pytest.mark.parametrize(("seed", "extra"), [
    (0, {"batch_size": 1}),
    (1, {"batch_size": 1, "item_bias": False, "init_normal": True}),
    (2, {"batch_size": 3}),
    (3, {"batch_size": 3, "lambda_session": 0.0, "sigma": 0.3}),
])
def test_matches_plain_python(seed: int, extra: dict[str, Any]) -> None:
    rng = np.random.default_rng(seed)
    ids = (rng.choice(900, size=8, replace=False) + 100).tolist()
    sessions = [[ids[k] for k in rng.integers(0, 8, size=rng.integers(1, 6))]
                for _ in range(12)]
    sids = rng.permutation(12).tolist()
    params = {"n_factors": 3, "n_iterations": 3, "learning_rate": 0.3, "lambda_session": 0.05,
              "lambda_item": 0.02, "sigma": 0.2, "item_bias": True, **extra}
    model = BPRMF(seed=seed, **params).fit(events_of(sessions, sids))
    item_f, bias, want_ids = plain_bpr(sessions, sids, seed, model.get_params())
    assert model.item_index_.ids.tolist() == want_ids
    np.testing.assert_allclose(model.item_factors_, item_f, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(model.item_bias_, bias, rtol=1e-10, atol=1e-15)
    prefixes = [[int(i) for i in model.item_index_.lookup(np.array(s[:c], dtype=np.int64))]
                for s in sessions for c in range(len(s) + 1)]
    want = np.array([plain_scores(item_f, bias, p) for p in prefixes])
    got = model.score([np.array(p, dtype=np.int64) for p in prefixes])
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)


# ------------------------------------------------------------------ estimator manners


def test_save_load_identical_without_session_factors(tmp_path: Path) -> None:
    model = BPRMF(n_factors=4, n_iterations=2).fit(events_of([[1, 2, 3], [2, 3], [4, 1]]))
    model.save(tmp_path / "bpr.pt")
    loaded = Baseline.load(tmp_path / "bpr.pt")
    assert isinstance(loaded, BPRMF) and not hasattr(loaded, "session_factors_")
    prefixes = [np.array([0, 1]), np.array([3]), np.array([], dtype=np.int64)]
    np.testing.assert_array_equal(model.score(prefixes), loaded.score(prefixes))


def test_load_state_rejects_mismatched_arrays() -> None:
    model = BPRMF(n_factors=4, n_iterations=1).fit(events_of([[1, 2, 3], [2, 3]]))
    good = model._state()
    for state in ({**good, "item_factors": good["item_factors"][:, :3]},
                  {**good, "item_bias": good["item_bias"][:2]},
                  {"item_factors": good["item_factors"]},
                  {**good, "session_factors": np.zeros((2, 4))}):
        with pytest.raises(ValueError):
            model._load_state(state)


@pytest.mark.parametrize("params", [
    {"n_factors": 0}, {"learning_rate": -0.1}, {"sigma": "wide"}, {"batch_size": 0},
    {"init_normal": "maybe"}, {"n_iterations": -1}, {"lambda_user": 0.1},
])
def test_bad_parameters(params: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        make_baseline("bprmf", params)


def test_parameters_from_text() -> None:
    model = make_baseline("bprmf", {"n_factors": "8", "item_bias": "false",
                                    "batch_size": "1", "learning_rate": "0.05"})
    params = model.get_params()
    assert (params["n_factors"], params["item_bias"], params["batch_size"]) == (8, False, 1)
    assert params["learning_rate"] == 0.05


def test_recommend_skips_unknown_items() -> None:
    model = BPRMF(n_factors=2, n_iterations=0).fit(events_of(TINY))
    model.item_factors_ = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    model.item_bias_ = np.zeros(3)
    rec = model.recommend([[999, 20], [999, 999]], k=2)
    assert rec.unknown.tolist() == [1, 2]
    assert rec.items[0].tolist() == [20, 10]  # u = i_20 = [0, 1]: scores 0, 1, -1
