"""Item-KNN: hand-computed similarities (repeats multiply, the n_sims tie cut by item index),
a plain-Python implementation of BASELINES.md §1 on random logs, and the estimator manners
(save/load, bad parameters, unknown items)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from gru4rec.baselines import Baseline, make_baseline
from gru4rec.baselines.itemknn import ItemKNN, cooccurrence
from gru4rec.baselines.sparse import SparseRows
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError

# The hand-made log, in file order (so the item index is 10 -> 0, 20 -> 1, 30 -> 2, 40 -> 3):
#   s1: 10 20 10 30    n(10) = 2: a repeated item
#   s2: 20 30
#   s3: 10 40
#   s4: 40 30 20       40 meets 30 before 20: the tie below is cut by index, not first sight
# supp: 10: 3, 20: 3, 30: 3, 40: 2
# c(10,20) = 2*1 (s1) = 2        c(10,30) = 2*1 (s1) = 2      c(10,40) = 1 (s3)
# c(20,30) = 1 (s1) + 1 (s2) + 1 (s4) = 3                    c(20,40) = c(30,40) = 1 (s4)
SESSIONS = [[10, 20, 10, 30], [20, 30], [10, 40], [40, 30, 20]]


def events_of(sessions: list[list[int]], session_ids: list[int] | None = None) -> Events:
    """Events of ``sessions`` (lists of item ids) in this file order, times increasing."""
    ids = session_ids if session_ids is not None else list(range(len(sessions)))
    sess = np.concatenate([np.full(len(s), i, dtype=np.int64) for i, s in zip(ids, sessions,
                                                                               strict=True)])
    item = np.concatenate([np.asarray(s, dtype=np.int64) for s in sessions])
    return Events(session=sess, item=item, time=np.arange(len(item), dtype=np.float64))


def dense_scores(model: Baseline, prefixes: list[list[int]]) -> np.ndarray:
    """(B, n_items) dense scores of prefixes given as item ids."""
    idx = [model.item_index_.lookup(np.asarray(p, dtype=np.int64)) for p in prefixes]
    scores = model.score(idx)
    assert isinstance(scores, SparseRows)
    return scores.toarray()


def test_known_answer_confidence() -> None:
    # alpha = 1: sim(i, j) = c_ij / (supp_i + 20), exact divisions
    model = ItemKNN(n_sims=2, lmbd=20, alpha=1.0).fit(events_of(SESSIONS))
    assert model.item_index_.ids.tolist() == [10, 20, 30, 40]
    got = dense_scores(model, [[], [10, 20], [20, 20], [30, 10], [40], [10, 30]])
    want = np.array([
        [0, 0, 0, 0],                    # empty prefix: every score 0
        [2 / 23, 0, 3 / 23, 0],          # last 20: c = 2, -, 3, 1 -> keeps 30, 10
        [2 / 23, 0, 3 / 23, 0],          # last 20 again: c_ii = 0, so 20 itself scores 0
        [0, 2 / 23, 2 / 23, 0],          # last 10: c = -, 2, 2, 1 -> keeps 20, 30
        [1 / 22, 1 / 22, 0, 0],          # last 40: 1, 1, 1 all tie -> keeps 10, 20 (index)
        [2 / 23, 3 / 23, 0, 0],          # last 30: c = 2, 3, -, 1 -> keeps 20, 10
    ])
    np.testing.assert_array_equal(got, want)


def test_known_answer_asymmetric_and_all_kept() -> None:
    # alpha = 0: sim(i, j) = c_ij / (supp_j + 20); n_sims = 3 keeps every co-occurring item
    model = ItemKNN(n_sims=3, lmbd=20, alpha=0.0).fit(events_of(SESSIONS))
    got = dense_scores(model, [[40], [10]])
    want = np.array([
        [1 / 23, 1 / 23, 1 / 23, 0],     # last 40: c = 1, 1, 1 over supp_j + 20 = 23
        [0, 2 / 23, 2 / 23, 1 / 22],     # last 10: c(10,40) = 1 over supp_40 + 20 = 22
    ])
    np.testing.assert_array_equal(got, want)


def test_known_answer_default_cosine() -> None:
    # alpha = 0.5, lmbd = 20: c_ij / sqrt((supp_i + 20) * (supp_j + 20)); pow(x, 0.5) is
    # not always the correctly rounded sqrt, hence the 1-ulp tolerance
    model = ItemKNN(n_sims=2).fit(events_of(SESSIONS))
    got = dense_scores(model, [[10], [40]])
    want = np.array([
        [0, 2 / 23, 2 / 23, 0],                                    # 1/sqrt(23*22) cut
        [1 / math.sqrt(22 * 23), 1 / math.sqrt(22 * 23), 0, 0],    # tie cut by index
    ])
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def test_cooccurrence_counts_event_pairs() -> None:
    from gru4rec.baselines.base import build_log
    from gru4rec.data.sessions import ItemIndex

    events = events_of(SESSIONS)
    log = build_log(events, ItemIndex.from_items(events.item))
    want = np.array([[0, 2, 2, 1], [2, 0, 3, 1], [2, 3, 0, 1], [1, 1, 1, 0]], dtype=float)
    for budget in (1, 5, 1000):  # one session per chunk, a few, all at once
        np.testing.assert_array_equal(cooccurrence(log, budget).toarray(), want)


# ------------------------------------------------------------------ differential


def reference_rows(sessions: list[list[int]], n_sims: int, lmbd: float, alpha: float
                   ) -> dict[int, dict[int, float]]:
    """BASELINES.md §1 with dicts and loops: c_ij counts ordered position pairs (u, t), u != t,
    with x_u = i != j = x_t; keep the n_sims largest per row, ties by ascending index (the
    order of first appearance in the file)."""
    index = {i: k for k, i in enumerate(dict.fromkeys(i for s in sessions for i in s))}
    supp: dict[int, int] = defaultdict(int)
    c: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for s in sessions:
        for i in s:
            supp[i] += 1
        for u, i in enumerate(s):
            for t, j in enumerate(s):
                if u != t and i != j:
                    c[i][j] += 1.0
    rows = {}
    for i, row in c.items():
        sims = [(v / ((supp[i] + lmbd) ** alpha * (supp[j] + lmbd) ** (1 - alpha)), j)
                for j, v in row.items()]
        sims.sort(key=lambda e: (-e[0], index[e[1]]))
        rows[i] = {j: v for v, j in sims[:n_sims]}
    return rows


def random_sessions(seed: int, n_items: int = 15, n_sessions: int = 40
                    ) -> tuple[list[list[int]], list[int]]:
    """Random sessions of 1..8 events (repeats likely) and shuffled session ids."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(1000, size=n_items, replace=False) + 100
    sessions = [ids[rng.integers(0, n_items, size=rng.integers(1, 9))].tolist()
                for _ in range(n_sessions)]
    return sessions, rng.permutation(n_sessions).tolist()


@pytest.mark.parametrize(("seed", "n_sims", "lmbd", "alpha"), [
    (0, 3, 5 * math.pi, 0.5), (1, 5, 0.7, 0.3), (2, 2, 20.0, 1.0), (3, 4, 20.0, 0.0),
    (4, 100, 20.0, 0.5),
])
def test_matches_plain_python(seed: int, n_sims: int, lmbd: float, alpha: float) -> None:
    sessions, sids = random_sessions(seed)
    model = ItemKNN(n_sims=n_sims, lmbd=lmbd, alpha=alpha).fit(events_of(sessions, sids))
    rows = reference_rows(sessions, n_sims, lmbd, alpha)
    prefixes = [s[:c] for s in sessions for c in range(len(s) + 1)]
    ids = model.item_index_.ids.tolist()
    want = np.array([[rows.get(p[-1], {}).get(j, 0.0) if p else 0.0 for j in ids]
                     for p in prefixes])
    np.testing.assert_allclose(dense_scores(model, prefixes), want, rtol=1e-10, atol=0)


# ------------------------------------------------------------------ estimator manners


def test_save_load_identical(tmp_path: Path) -> None:
    sessions, sids = random_sessions(5)
    model = ItemKNN(n_sims=3).fit(events_of(sessions, sids))
    model.save(tmp_path / "knn.pt")
    loaded = Baseline.load(tmp_path / "knn.pt")
    assert isinstance(loaded, ItemKNN) and loaded.get_params() == model.get_params()
    prefixes = [np.arange(k % 4, dtype=np.int64) for k in range(model.n_items)]
    a, b = model.score(prefixes), loaded.score(prefixes)
    assert isinstance(a, SparseRows) and isinstance(b, SparseRows)
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_load_state_rejects_mismatched_arrays() -> None:
    model = ItemKNN(n_sims=2).fit(events_of(SESSIONS))
    good = model._state()
    bad = [
        {"indptr": good["indptr"][:-1], "indices": good["indices"], "data": good["data"]},
        {**good, "data": good["data"][:-1]},
        {**good, "indices": good["indices"] + 10},
        {"indptr": good["indptr"], "indices": good["indices"]},
    ]
    for state in bad:
        with pytest.raises(ValueError):
            model._load_state(state)
    with pytest.raises(ValueError, match="n_sims"):
        ItemKNN(n_sims=3).fit(events_of(SESSIONS))._load_state(_too_long_rows())


def _too_long_rows() -> dict[str, np.ndarray]:
    """A state whose row 0 holds 4 entries (more than n_sims = 3)."""
    return {"indptr": np.array([0, 4, 4, 4, 4]), "indices": np.array([0, 1, 2, 3]),
            "data": np.ones(4)}


@pytest.mark.parametrize("params", [
    {"n_sims": 0}, {"alpha": 1.5}, {"alpha": -0.1}, {"lmbd": -1}, {"n_sims": "many"},
    {"k": 5},
])
def test_bad_parameters(params: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        make_baseline("itemknn", params)


def test_parameters_from_text() -> None:
    model = make_baseline("itemknn", {"n_sims": "50", "lmbd": "10", "alpha": "1"})
    assert model.get_params() == {"n_sims": 50, "lmbd": 10.0, "alpha": 1.0}


def test_recommend_skips_unknown_items() -> None:
    model = ItemKNN(n_sims=2).fit(events_of(SESSIONS))
    rec = model.recommend([[20, 999], [999], [40, 10]], k=2)
    assert rec.unknown.tolist() == [1, 1, 0]
    assert rec.items[0].tolist() == [30, 10]   # after 20: 3/23 beats 2/23
    assert set(rec.items[2].tolist()) == {20, 30}  # after 10: a 2/23 tie
