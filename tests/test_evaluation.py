"""gru4rec.evaluate on a trained model: agreement with recommend, several cutoffs in one pass,
test_against_items, tie modes, unknown test items, and every bad argument."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gru4rec import ConfigError, DataError, GRU4Rec, evaluate
from gru4rec.data.events import Events


@pytest.fixture(scope="module")
def test_events(successor_test: Events) -> Events:
    return successor_test


def random_sessions(n_items: int, n_sessions: int, length: int, seed: int) -> Events:
    """Sessions of uniformly random items: the successor model ranks their targets anywhere."""
    rng = np.random.default_rng(seed)
    items = rng.integers(0, n_items, size=n_sessions * length).astype(np.int64)
    session = np.repeat(np.arange(n_sessions, dtype=np.int64), length)
    time = np.arange(n_sessions * length, dtype=np.float64)
    return Events(session=session, item=items, time=time)


# ----------------------------------------------------------------------------- unknown items


def test_unknown_test_items_are_dropped_and_the_rest_evaluated(
        fitted: GRU4Rec, events_of: Callable[..., Events]) -> None:
    test = events_of([
        [0, 1, 77_777, 2, 3],  # -> 0 1 2 3: three predictions, all successors
        [77_777, 10],          # -> 10: no prediction
        [20, 21],              # one prediction
        [88_888, 88_888],      # vanishes
    ])
    result = evaluate(fitted, test, cutoffs=[1])
    assert result.n_dropped_events == 4
    assert result.n_predictions == 4
    assert result["Recall@1"] == 1.0  # the state continues across the dropped event


def test_only_unknown_items_is_an_error(fitted: GRU4Rec,
                                        events_of: Callable[..., Events]) -> None:
    with pytest.raises(DataError, match="no predictions to evaluate"):
        evaluate(fitted, events_of([[1000, 1001, 1002]]))


# ----------------------------------------------------------------------------- metrics


def test_evaluate_agrees_with_recommend(fitted: GRU4Rec) -> None:
    test = random_sessions(50, 30, 5, seed=3)
    k = 10
    result = evaluate(fitted, test, cutoffs=[k], batch_size=7)
    prefixes, targets = [], []
    items = test.item.reshape(30, 5)
    for row in items:
        for t in range(1, 5):
            prefixes.append(row[:t].tolist())
            targets.append(int(row[t]))
    ids, _ = fitted.recommend(prefixes, k=k)
    hits = [list(r).index(t) + 1 if t in r else None for r, t in zip(ids.tolist(), targets,
                                                                      strict=True)]
    assert result.n_predictions == len(targets) == 120
    assert result[f"Recall@{k}"] == pytest.approx(np.mean([h is not None for h in hits]))
    assert result[f"MRR@{k}"] == pytest.approx(np.mean([1 / h if h else 0.0 for h in hits]))
    assert 0.0 < result[f"Recall@{k}"] < 1.0  # the check is not vacuous


def test_several_cutoffs_in_one_pass(fitted: GRU4Rec) -> None:
    test = random_sessions(50, 40, 6, seed=4)
    cutoffs = [20, 1, 5, 10]
    both = evaluate(fitted, test, cutoffs=cutoffs)
    assert both.cutoffs == (1, 5, 10, 20)
    recall = [both[f"Recall@{k}"] for k in both.cutoffs]
    mrr = [both[f"MRR@{k}"] for k in both.cutoffs]
    assert np.all(np.diff(recall) >= 0) and np.all(np.diff(mrr) >= 0)
    assert all(m <= r for m, r in zip(mrr, recall, strict=True))
    assert recall[0] == pytest.approx(mrr[0])  # at k = 1 they are the same
    assert recall[0] < recall[-1]
    for k in cutoffs:
        single = evaluate(fitted, test, cutoffs=[k])
        assert single[f"Recall@{k}"] == both[f"Recall@{k}"]
        assert single[f"MRR@{k}"] == both[f"MRR@{k}"]
    assert both.lines()[0].startswith("Recall@1: ")


def test_test_against_items_limits_the_ranks(fitted: GRU4Rec) -> None:
    test = random_sessions(50, 40, 6, seed=5)
    n = 5
    full = evaluate(fitted, test, cutoffs=[n + 1])
    limited = evaluate(fitted, test, cutoffs=[n + 1], test_against_items=n)
    assert full[f"Recall@{n + 1}"] < 1.0
    assert limited[f"Recall@{n + 1}"] == 1.0  # rank <= N + 1 always
    assert limited.n_predictions == full.n_predictions
    everything = evaluate(fitted, test, cutoffs=[5], test_against_items=10_000)
    assert everything.metrics == evaluate(fitted, test, cutoffs=[5]).metrics


def test_test_against_items_matches_a_reference(fitted: GRU4Rec, test_events: Events) -> None:
    support = fitted.item_support_
    desc = np.sort(support)[::-1]
    n = next(i for i in range(5, len(desc)) if desc[i - 1] > desc[i])  # no tie at the cut
    popular = set(fitted.item_index_.ids[np.argsort(-support, kind="stable")[:n]].tolist())
    test = random_sessions(50, 30, 5, seed=8)
    items = test.item.reshape(30, 5)
    prefixes = [row[:t].tolist() for row in items for t in range(1, 5)]
    targets = [int(row[t]) for row in items for t in range(1, 5)]
    ids, scores = fitted.recommend(prefixes, k=50)
    ranks = []
    for row_ids, row_scores, target in zip(ids.tolist(), scores.tolist(), targets, strict=True):
        score = dict(zip(row_ids, row_scores, strict=True))
        ranks.append(1 + sum(score[i] > score[target] for i in popular if i != target))
    ranks = np.array(ranks)
    result = evaluate(fitted, test, cutoffs=[1, 3, n], test_against_items=n)
    for k in (1, 3, n):
        assert result[f"Recall@{k}"] == pytest.approx(np.mean(ranks <= k))
        assert result[f"MRR@{k}"] == pytest.approx(np.mean(np.where(ranks <= k, 1 / ranks, 0)))
    # the target is never compared with itself: the successor is still ranked first
    for mode in ("standard", "conservative"):
        own = evaluate(fitted, test_events, cutoffs=[1], test_against_items=n, mode=mode)
        assert own["Recall@1"] == evaluate(fitted, test_events, cutoffs=[1])["Recall@1"] == 1.0


def test_conservative_ties_count_against_the_model(fitted: GRU4Rec) -> None:
    test = random_sessions(50, 20, 4, seed=6)
    standard = evaluate(fitted, test, cutoffs=[10], mode="standard")
    conservative = evaluate(fitted, test, cutoffs=[10], mode="conservative")
    assert conservative["Recall@10"] <= standard["Recall@10"]
    assert conservative.mode == "conservative"


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"batch_size": 0}, ConfigError, "batch_size must be >= 1"),
    ({"test_against_items": 0}, ConfigError, "test_against_items must be >= 1"),
    ({"cutoffs": []}, ConfigError, "cutoffs must not be empty"),
    ({"cutoffs": [0, 5]}, ConfigError, "every cutoff must be a positive int"),
    ({"cutoffs": "20"}, ConfigError, "cutoffs must be a sequence"),
    ({"mode": "optimistic"}, ConfigError, "unknown tie mode 'optimistic'"),
])
def test_bad_evaluate_input(fitted: GRU4Rec, test_events: Events, kwargs: dict, error: type,
                            message: str) -> None:
    with pytest.raises(error, match=message):
        evaluate(fitted, test_events, **kwargs)


def test_evaluate_missing_test_file(fitted: GRU4Rec, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file does not exist"):
        evaluate(fitted, tmp_path / "absent.tsv")
    with pytest.raises(DataError, match="file does not exist"):
        GRU4Rec(device="cpu").fit(tmp_path / "absent.tsv")


def test_target_items_count_only_the_predictions_of_those_targets(fitted,
                                                                  successor_test) -> None:
    whole = evaluate(fitted, successor_test, cutoffs=[1, 20])
    targets = successor_test.item.reshape(100, 6)[:, 1:]  # every prediction's target
    few = {3, 7, 11}
    part = evaluate(fitted, successor_test, cutoffs=[1, 20], target_items=few | {"nope"})
    assert part.n_predictions == int(np.isin(targets, list(few)).sum())
    rest = evaluate(fitted, successor_test, cutoffs=[1, 20],
                    target_items=set(range(50)) - few)
    assert 0 < part.n_predictions and part.n_predictions + rest.n_predictions == \
        whole.n_predictions
    for key in ("Recall@1", "MRR@20"):  # the two parts make up the whole
        total = part.n_predictions * part[key] + rest.n_predictions * rest[key]
        assert total == pytest.approx(whole.n_predictions * whole[key])
