"""The GRU4Rec estimator end to end: learning, reproducibility, refusing when not fitted,
the constructor's own arguments, and recommend.

Every bad input has a test that asserts the error type and a piece of its message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gru4rec import (
    ConfigError,
    DataError,
    GRU4Rec,
    NotFittedError,
    TrainingDivergedError,
    evaluate,
)
from gru4rec.data.events import Events


@pytest.fixture(scope="module")
def train(successor_train: Events) -> Events:
    return successor_train


@pytest.fixture(scope="module")
def test_events(successor_test: Events) -> Events:
    return successor_test


# ----------------------------------------------------------------------------- learning


EMBEDDINGS = {
    "constrained": {"constrained_embedding": True},
    "separate": {"constrained_embedding": False, "embedding": 16},
    "none": {"constrained_embedding": False, "embedding": 0},
}


@pytest.mark.parametrize("mode", list(EMBEDDINGS))
@pytest.mark.parametrize("loss", ["cross-entropy", "bpr-max"])
def test_learns_the_successor_rule(fit_successor: Callable[..., GRU4Rec], train: Events,
                                   test_events: Events, device: str, loss: str,
                                   mode: str) -> None:
    model = fit_successor(train, device=device, loss=loss, **EMBEDDINGS[mode])
    result = evaluate(model, test_events, cutoffs=[1])
    assert result.n_predictions == 100 * 5
    assert result["Recall@1"] >= 0.95, result.metrics
    assert len(model.history_) == 6
    assert model.history_[-1].loss < model.history_[0].loss


def test_fit_returns_self_and_counts_examples(train: Events,
                                              small_params: dict[str, Any]) -> None:
    model = GRU4Rec(device="cpu", n_epochs=1, **small_params)
    assert model.fit(train) is model
    assert model.history_[0].n_events == 300 * 5  # events - sessions
    assert model.n_items == 50


def test_same_seed_same_losses_different_seed_different_losses(
        train: Events, small_params: dict[str, Any]) -> None:
    params = {"n_epochs": 2, "dropout_p_hidden": 0.2, **small_params}
    a = GRU4Rec(device="cpu", seed=5, **params).fit(train)
    b = GRU4Rec(device="cpu", seed=5, **params).fit(train)
    c = GRU4Rec(device="cpu", seed=6, **params).fit(train)
    assert [r.loss for r in a.history_] == [r.loss for r in b.history_]
    _, sa = a.recommend([[1, 2, 3]], k=5)
    _, sb = b.recommend([[1, 2, 3]], k=5)
    np.testing.assert_array_equal(sa, sb)
    assert [r.loss for r in a.history_] != [r.loss for r in c.history_]


@pytest.mark.parametrize("loss", ["cross-entropy", "bpr-max"])
def test_evaluating_after_a_step_leaves_the_training_unchanged(
        train: Events, test_events: Events, device: str, loss: str,
        small_params: dict[str, Any]) -> None:
    # how tuning prunes inside an epoch: on_step evaluates the half-trained model
    params = {"n_epochs": 2, "dropout_p_hidden": 0.2, "loss": loss, **small_params}
    plain = GRU4Rec(device=device, seed=3, **params).fit(train)
    calls: list[tuple[int, int]] = []
    mid: list[float] = []

    def on_step(done: int, steps: int) -> None:
        calls.append((done, steps))
        if done in (1, steps // 2):
            mid.append(evaluate(probed, test_events, cutoffs=[5])["Recall@5"])

    probed = GRU4Rec(device=device, seed=3, **params)
    probed.fit(train, on_step=on_step)
    steps = calls[0][1]
    assert calls == [(t, steps) for t in range(1, steps + 1)] * 2 and len(mid) == 4
    assert [r.loss for r in probed.history_] == [r.loss for r in plain.history_]
    for name, weights in plain.net_.params.items():
        torch.testing.assert_close(probed.net_.params[name], weights, rtol=0, atol=0)
    assert mid[0] < mid[1] <= evaluate(plain, test_events, cutoffs=[5])["Recall@5"]


def test_an_exception_from_on_step_stops_the_training_there(
        train: Events, small_params: dict[str, Any]) -> None:
    seen: list[int] = []

    def on_step(done: int, steps: int) -> None:
        seen.append(done)
        if done == 3:
            raise KeyError("stop")

    model = GRU4Rec(device="cpu", n_epochs=2, **small_params)
    with pytest.raises(KeyError, match="stop"):
        model.fit(train, on_step=on_step)
    assert seen == [1, 2, 3] and model.history_ == []


# ----------------------------------------------------------------------------- not fitted


@pytest.mark.parametrize("use", ["recommend", "save", "evaluate", "n_items"])
def test_unfitted_model_refuses(use: str, tmp_path: Path, test_events: Events) -> None:
    model = GRU4Rec(device="cpu")
    calls = {
        "recommend": lambda: model.recommend([[1, 2]]),
        "save": lambda: model.save(tmp_path / "m.pt"),
        "evaluate": lambda: evaluate(model, test_events),
        "n_items": lambda: model.n_items,
    }
    with pytest.raises(NotFittedError, match="not trained yet"):
        calls[use]()
    assert not (tmp_path / "m.pt").exists()


def test_diverged_training_is_reported_and_the_model_refuses(train: Events,
                                                             test_events: Events,
                                                             tmp_path: Path,
                                                             small_params: dict[str, Any]) -> None:
    model = GRU4Rec(device="cpu", n_epochs=2, loss="bpr-max", **{**small_params,
                                                                 "learning_rate": 1e30})
    with pytest.raises(TrainingDivergedError, match="NaN or infinite"):
        model.fit(train)
    with pytest.raises(NotFittedError, match="diverged"):
        model.save(tmp_path / "m.pt")
    with pytest.raises(NotFittedError, match="diverged"):
        evaluate(model, test_events)
    with pytest.raises(NotFittedError, match="diverged"):
        model.recommend([[1]])
    assert not (tmp_path / "m.pt").exists()


# ----------------------------------------------------------------------------- constructor


@pytest.mark.parametrize(("device", "message"), [
    ("tpu", "unknown device 'tpu'"),
    ("cuda:abc", "unknown device 'cuda:abc'"),
    ("meta", "device 'meta' is not supported"),
])
def test_bad_device(device: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GRU4Rec(device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_gpu() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        GRU4Rec(device="cuda")


def test_bad_sample_store_size() -> None:
    with pytest.raises(ConfigError, match="sample_store_size must be >= 1"):
        GRU4Rec(device="cpu", sample_store_size=0)


def test_fit_without_any_example(events_of: Callable[..., Events],
                                  small_params: dict[str, Any]) -> None:
    one_event_sessions = events_of([[1], [2], [3]])
    with pytest.raises(DataError, match="no session with 2 or more events"):
        GRU4Rec(device="cpu", **small_params).fit(one_event_sessions)


# ----------------------------------------------------------------------------- recommend


@pytest.mark.parametrize(("sessions", "k", "error", "message"), [
    ("abc", 5, DataError, "sessions must be a list of item-id lists"),
    (42, 5, DataError, "sessions must be a list of item-id lists"),
    ([[1, 2]], 0, ConfigError, "k must be a positive integer"),
    ([[1, 2]], 2.5, ConfigError, "k must be a positive integer"),
])
def test_bad_recommend_input(fitted: GRU4Rec, sessions: Any, k: Any, error: type,
                             message: str) -> None:
    with pytest.raises(error, match=message):
        fitted.recommend(sessions, k=k)


def test_recommend_skips_unknown_items(fitted: GRU4Rec) -> None:
    ids, scores = fitted.recommend([[3, 4, 999_999], [3, 4], [], [999_999]], k=50)
    assert ids.shape == (4, 50) and scores.shape == (4, 50)
    np.testing.assert_array_equal(scores[0], scores[1])
    assert ids[0, 0] == 5
    np.testing.assert_array_equal(scores[2], scores[3])  # no known item: zero state
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    assert sorted(ids[0].tolist()) == list(range(50))
