"""One evaluator for GRU4Rec and the baselines: the predictions a baseline is asked for,
the ranks under every tie mode against a brute-force count, and the tie case that makes
the 'standard' mode flatter sparse scorers."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from gru4rec import evaluate
from gru4rec.baselines.base import Baseline, Scores, TrainLog
from gru4rec.baselines.simple import Pop
from gru4rec.baselines.sparse import SparseRows
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError


class Hashed(Baseline):
    """Scores that depend on the whole prefix (a hash), with many ties and negatives; it
    records every prefix it is asked about."""

    name = "hashed"
    sparse: ClassVar[bool] = False

    def _fit(self, log: TrainLog) -> None:
        self.asked: list[list[int]] = []

    def _table(self, prefix: np.ndarray) -> np.ndarray:
        seed = int(sum((i + 1) * 7919 ** k for k, i in enumerate(prefix.tolist())) % 2**32)
        return np.random.default_rng(seed).integers(-2, 3, self.n_items).astype(float)

    def _score(self, prefixes: list[np.ndarray]) -> Scores:
        self.asked += [p.tolist() for p in prefixes]
        rows = np.stack([self._table(p) for p in prefixes])
        if not self.sparse:
            return rows
        return SparseRows.from_rows([(np.flatnonzero(r), r[r != 0]) for r in rows],
                                    self.n_items)

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        pass


class SparseHashed(Hashed):
    sparse = True


def _log(seed: int, n: int = 300, n_items: int = 30) -> Events:
    rng = np.random.default_rng(seed)
    return Events(rng.integers(0, 50, n), rng.integers(0, n_items, n), rng.random(n))


def _by_hand(model: Hashed, test: Events, k: int, mode: str) -> tuple[float, float, int]:
    """Recall@k and MRR@k by looping over the sessions and counting ranks directly."""
    hits = rr = n = 0.0
    for sid in np.unique(test.session):
        rows = np.flatnonzero(test.session == sid)
        rows = rows[np.argsort(test.time[rows], kind="stable")]
        idx = model.item_index_.lookup(test.item[rows])
        idx = idx[idx >= 0]  # unknown items dropped, the rest of the session kept
        for c in range(1, len(idx)):
            s = model._table(idx[:c])
            above, ties = (s > s[idx[c]]).sum(), (s == s[idx[c]]).sum()
            rank = {"standard": 1 + above, "conservative": above + ties,
                    "median": 1 + above + (ties - 1) / 2}[mode]
            n += 1
            hits += rank <= k
            rr += (rank <= k) / rank
    return hits / n, rr / n, int(n)


@pytest.mark.parametrize("cls", [Hashed, SparseHashed])
@pytest.mark.parametrize("mode", ["standard", "conservative", "median"])
def test_every_prefix_is_ranked_as_counting_by_hand(cls: type[Hashed], mode: str) -> None:
    model = cls().fit(_log(0))
    test = _log(1, n=200, n_items=35)  # items 30..34 are unknown to the model
    result = evaluate(model, test, cutoffs=[1, 5, 10], mode=mode, batch_size=7)
    for k in (1, 5, 10):
        recall, mrr, n = _by_hand(model, test, k, mode)
        assert result[f"Recall@{k}"] == pytest.approx(recall, abs=1e-12)
        assert result[f"MRR@{k}"] == pytest.approx(mrr, abs=1e-12)
    assert result.n_predictions == n
    assert result.n_dropped_events == int((test.item >= 30).sum())


def test_the_model_sees_prefixes_only_never_the_target() -> None:
    model = Hashed().fit(_log(0))
    test = Events(np.array([1, 1, 1, 2, 2]), np.array([3, 4, 5, 6, 7]), np.arange(5.0))
    evaluate(model, test, cutoffs=[5])
    asked = sorted(tuple(model.item_index_.ids[p].tolist()) for p in model.asked)
    assert asked == [(3,), (3, 4), (6,)]


def test_tiebreaking_ranks_lie_between_the_optimistic_and_the_pessimistic() -> None:
    model = SparseHashed().fit(_log(0))
    test = _log(1, n=200)
    low, high, rnd = (evaluate(model, test, cutoffs=[10], mode=m)["MRR@10"]
                      for m in ("conservative", "standard", "tiebreaking"))
    assert low < rnd < high


def test_a_zero_scored_target_is_a_miss_under_conservative_ties() -> None:
    # 24 items: 0..19, 30 and 39 once each, 20 three times and 21 twice: Pop(top_n=2)
    # scores 20 and 21, the 22 others 0
    train = Events(np.arange(25) // 5, np.r_[np.arange(20), 20, 20, 20, 21, 21],
                   np.arange(25.0))
    train = Events(np.r_[train.session, 9, 9], np.r_[train.item, 30, 39], np.r_[train.time, 0, 1])
    model = Pop(top_n=2).fit(train)
    # targets: 20 (rank 1), 21 (rank 2), 5, 6, 7 (score 0)
    test = Events(np.zeros(6, dtype=int), np.array([1, 20, 21, 5, 6, 7]), np.arange(6.0))
    counted_by_hand = 2 / 5  # only 20 and 21 are in any top-20 list
    assert evaluate(model, test, cutoffs=[20], mode="conservative")["Recall@20"] == \
        pytest.approx(counted_by_hand)
    # 'standard' puts each zero target at rank 3, right behind the two scored items
    assert evaluate(model, test, cutoffs=[20], mode="standard")["Recall@20"] == 1.0
    assert evaluate(model, test, cutoffs=[3], mode="standard")["MRR@3"] == \
        pytest.approx((1 + 1 / 2 + 3 * (1 / 3)) / 5)


def test_options_for_gru4rec_only_are_refused_for_baselines() -> None:
    model = Pop().fit(_log(0))
    with pytest.raises(ConfigError, match="test_against_items"):
        evaluate(model, _log(1), test_against_items=5)
    with pytest.raises(ConfigError, match="continue_state"):
        evaluate(model, _log(1), continue_state=True, user_key="u")


def test_target_items_restrict_the_counted_predictions() -> None:
    model = Hashed().fit(_log(0))
    test = _log(1, n=200)
    every = evaluate(model, test, cutoffs=[5])
    some = evaluate(model, test, cutoffs=[5], target_items=[0, 1, 2, 999])
    assert 0 < some.n_predictions < every.n_predictions
