"""Validation during training: a value per epoch, the best epoch's weights kept, early
stopping after ``patience`` epochs without improvement, and the bad options."""

from __future__ import annotations

import pytest
import torch

from gru4rec import GRU4Rec, evaluate
from gru4rec.errors import ConfigError
from gru4rec.training import EpochResult, StopTraining
from gru4rec.validation import Validation, fit_validated

SMALL = dict(layers=[32], batch_size=16, n_sample=0, learning_rate=0.2, loss="cross-entropy",
             device="cpu", sample_store_size=1000)


def test_training_stops_after_patience_epochs_and_keeps_the_best_weights(
        successor_train, successor_test) -> None:
    # the successor rule is learned within a few epochs (here 0.990, 0.998, then 1.0):
    # Recall@1 reaches 1.0 and can no longer improve, so validation peaks early and the
    # run must stop `patience` epochs on
    model = GRU4Rec(n_epochs=40, seed=3, **{**SMALL, "learning_rate": 0.02})
    weights: list[dict[str, torch.Tensor]] = []

    def snapshot(result: EpochResult, value: float) -> None:
        weights.append({n: p.detach().clone() for n, p in model.net_.params.items()})

    valid = Validation(successor_test, cutoff=1, patience=3)
    history = fit_validated(model, successor_train, valid, on_epoch=snapshot)
    assert history.stopped_early and len(history.values) < 40
    assert len(history.values) == history.best_epoch + 3 == len(model.history_)
    assert max(history.values) == history.best == history.values[history.best_epoch - 1]
    assert all(v < history.best for v in history.values[:history.best_epoch - 1])
    # the model holds the best epoch's weights, not the last epoch's
    for name, p in model.net_.params.items():
        assert torch.equal(p, weights[history.best_epoch - 1][name])
    assert any(not torch.equal(p, weights[-1][name]) for name, p in model.net_.params.items())
    assert model.optimizer_state_ is None  # it belonged to the last epoch
    # and its metrics are the ones reported for that epoch
    assert evaluate(model, successor_test, cutoffs=[1])["Recall@1"] == history.best


def test_without_patience_every_epoch_runs_and_values_are_reported(
        successor_train, successor_test) -> None:
    seen: list[float] = []
    model = GRU4Rec(n_epochs=3, seed=3, **SMALL)
    history = fit_validated(model, successor_train,
                            Validation(successor_test, metric="mrr", sample=120),
                            on_epoch=lambda result, value: seen.append(value))
    assert len(model.history_) == 3 and not history.stopped_early
    assert seen == history.values and history.key == "MRR@20"


def test_an_on_epoch_callback_may_stop_the_training(successor_train) -> None:
    def stop(result: EpochResult) -> None:
        if result.epoch == 2:
            raise StopTraining

    model = GRU4Rec(n_epochs=5, seed=3, **SMALL).fit(successor_train, on_epoch=stop)
    assert len(model.history_) == 2
    assert model.recommend([[1, 2]], k=3).items.shape == (1, 3)  # usable


@pytest.mark.parametrize("valid, message", [
    (dict(metric="ndcg"), "metric must be recall or mrr"),
    (dict(patience=0), "patience must be a positive integer"),
    (dict(cutoff=0, sample=-1), "cutoff must be a positive integer"),
    (dict(mode="optimistic"), "unknown tie mode"),
])
def test_bad_validation_options_are_refused(successor_train, successor_test, valid,
                                            message) -> None:
    model = GRU4Rec(n_epochs=1, **SMALL)
    with pytest.raises(ConfigError, match=message):
        fit_validated(model, successor_train, Validation(successor_test, **valid))
    assert not model.history_  # refused before any training
