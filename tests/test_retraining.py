"""Retraining a model on new events: new items, kept rows and optimiser state, supports,
slim files, and which hyperparameters may change (gru4rec.retraining, GRU4Rec.fit)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gru4rec import GRU4Rec
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError, DataError, ModelFileError, NotFittedError
from gru4rec.retraining import grow
from gru4rec.training import Trainer

SMALL: dict[str, Any] = {"layers": [16], "batch_size": 8, "n_sample": 8, "n_epochs": 2,
                         "learning_rate": 0.1, "sample_store_size": 10_000}
MODES = {"shared": {}, "separate": {"constrained_embedding": False, "embedding": 12},
         "onehot": {"constrained_embedding": False, "embedding": 0}}


Make = Callable[..., Events]


def _old_and_new(make: Make, n_old: int = 30, n_all: int = 40) -> tuple[Events, Events]:
    """A log on items 0..n_old-1 and a later one on items 0..n_all-1 (successor rule)."""
    return (make(n_items=n_old, n_sessions=120, length=5, seed=0),
            make(n_items=n_all, n_sessions=160, length=5, seed=1))


@pytest.mark.parametrize("mode", MODES)
def test_known_rows_and_optimiser_state_are_kept_and_new_rows_start_fresh(
        successor_events: Make, mode: str) -> None:
    old, new = _old_and_new(successor_events)
    model = GRU4Rec(device="cpu", momentum=0.3, adagrad_init=1e-4, **SMALL,
                    **MODES[mode]).fit(old)
    net, state = model.net_, model.optimizer_state_
    assert state is not None
    grown = grow(net, model.item_index_, model.item_support_, new, model.config,
                 torch.Generator().manual_seed(0))
    assert grown.n_new == 10 and grown.index.ids[:30].tolist() == model.item_index_.ids.tolist()
    trainer = Trainer(grown.net, model.config, grown.sessions, grown.support, opt_state=state)
    for name, p in net.params.items():  # before the first update: bit for bit
        q = grown.net.params[name]
        assert torch.equal(q[: p.shape[0]], p), name
        for key, t in state[name].items():
            assert torch.equal(trainer.opt.state[name][key][: t.shape[0]], t), (name, key)
    for name in grown.net.item_tables:
        fresh = trainer.opt.state[name]
        assert bool((fresh["acc"][30:] == torch.tensor(1e-4)).all())
        assert not fresh["vel"][30:].any()
    assert grown.support.tolist() == (
        np.bincount(grown.sessions.items, minlength=40)
        + np.r_[model.item_support_, np.zeros(10, dtype=np.int64)]).tolist()


@pytest.mark.parametrize("mode", MODES)
def test_new_rows_are_drawn_at_the_scale_of_the_grown_table(
        successor_events: Make, mode: str) -> None:
    # some 400 new rows: a sharp estimate of their spread
    old, new = _old_and_new(successor_events, n_old=30, n_all=530)
    model = GRU4Rec(device="cpu", **SMALL, **MODES[mode]).fit(old)
    grown = grow(model.net_, model.item_index_, model.item_support_, new, model.config,
                 torch.Generator().manual_seed(0))
    n, h = len(grown.index), 16
    assert grown.n_new > 300
    wyb = grown.net.params["Wyb"][30:]
    tables = {"Wyb": (wyb[:, :h], math.sqrt(6 / (n + h)))}
    if mode == "separate":
        tables["E"] = (grown.net.params["E"][30:], math.sqrt(6 / (n + 12)))
    if mode == "onehot":  # three gate blocks, each with fan_out h
        tables["Wx0"] = (grown.net.params["Wx0"][30:], math.sqrt(6 / (n + h)))
    for name, (rows, s) in tables.items():
        assert float(rows.abs().max()) <= s, name
        assert float(rows.abs().max()) > 0.95 * s, name  # uniform in +-s, not narrower
        assert float(rows.std()) == pytest.approx(s / math.sqrt(3), rel=0.05), name
    assert not wyb[:, h].any()  # output biases start at 0


def test_continuing_with_the_saved_state_equals_training_without_a_break(
        successor_events: Make, tmp_path: Path) -> None:
    # no sampling and no dropout: epoch 2 of one run is the retraining's epoch 1
    events = successor_events(n_items=30, n_sessions=120, length=5, seed=0)
    params = {**SMALL, "n_sample": 0, "momentum": 0.2}
    whole = GRU4Rec(device="cpu", **{**params, "n_epochs": 2}).fit(events)
    first = GRU4Rec(device="cpu", **{**params, "n_epochs": 1}).fit(events)
    first.save(tmp_path / "m.pt")
    resumed = GRU4Rec.load(tmp_path / "m.pt").fit(events, retrain=True)
    for name, p in whole.net_.params.items():
        assert torch.equal(resumed.net_.params[name], p), name
    fresh = GRU4Rec.load(tmp_path / "m.pt").fit(events, retrain=True, fresh_optimizer=True)
    assert not torch.equal(fresh.net_.params["Wyb"], whole.net_.params["Wyb"])


def test_retraining_recommends_the_new_items(successor_events: Make) -> None:
    old, new = _old_and_new(successor_events)
    model = GRU4Rec(device="cpu", **{**SMALL, "n_epochs": 6}).fit(old)
    assert model.n_items == 30
    model.fit(new, retrain=True)
    assert model.n_items == 40
    items, _ = model.recommend([[i] for i in range(30, 39)], k=1)
    assert (items[:, 0] == np.arange(31, 40)).mean() >= 0.7


def test_data_with_nothing_to_learn_leaves_the_model_as_it_was(successor_events: Make) -> None:
    old, _ = _old_and_new(successor_events)
    model = GRU4Rec(device="cpu", **SMALL).fit(old)
    before = {n: p.clone() for n, p in model.net_.params.items()}
    singles = Events(session=np.arange(3), item=np.array([100, 101, 5]),
                     time=np.zeros(3))
    with pytest.raises(DataError, match="nothing to retrain on; the model is unchanged"):
        model.fit(singles, retrain=True)
    assert model.n_items == 30 and len(model.history_) == 2
    for name, p in model.net_.params.items():
        assert torch.equal(p, before[name]), name


def test_all_known_items_keep_the_item_count_and_move_the_weights(successor_events: Make) -> None:
    old, _ = _old_and_new(successor_events)
    model = GRU4Rec(device="cpu", **SMALL).fit(old)
    before = model.net_.params["Wyb"].clone()
    support = model.item_support_.copy()
    model.fit(old, retrain=True)
    assert model.n_items == 30 and not torch.equal(model.net_.params["Wyb"], before)
    assert model.item_support_.tolist() == (2 * support).tolist()


def test_a_slim_file_retrains_from_fresh_state_with_a_notice(
        successor_events: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old, new = _old_and_new(successor_events)
    model = GRU4Rec(device="cpu", **SMALL).fit(old)
    model.save(tmp_path / "full.pt")
    model.save(tmp_path / "slim.pt", optimizer=False)
    assert (tmp_path / "slim.pt").stat().st_size < 0.7 * (tmp_path / "full.pt").stat().st_size
    slim = GRU4Rec.load(tmp_path / "slim.pt")
    assert slim.optimizer_state_ is None
    with caplog.at_level(logging.WARNING, logger="gru4rec"):
        slim.fit(new, retrain=True)
    assert "retraining starts the optimiser afresh" in caplog.text
    assert slim.n_items == 40 and slim.optimizer_state_ is not None


def test_the_optimiser_state_survives_save_and_load(successor_events: Make, tmp_path: Path) -> None:
    old, _ = _old_and_new(successor_events)
    model = GRU4Rec(device="cpu", momentum=0.1, **SMALL).fit(old)
    model.save(tmp_path / "m.pt")
    loaded = GRU4Rec.load(tmp_path / "m.pt").optimizer_state_
    assert loaded is not None and model.optimizer_state_ is not None
    for name, st in model.optimizer_state_.items():
        assert set(loaded[name]) == {"acc", "vel"}
        for key, t in st.items():
            assert torch.equal(loaded[name][key], t), (name, key)


def test_an_altered_optimiser_state_is_refused(successor_events: Make, tmp_path: Path) -> None:
    old, _ = _old_and_new(successor_events)
    model = GRU4Rec(device="cpu", **SMALL).fit(old)
    assert model.optimizer_state_ is not None
    model.optimizer_state_["Wyb"]["acc"] = torch.zeros(3, 3)
    model.save(tmp_path / "m.pt")
    with pytest.raises(ModelFileError, match=r"optimiser state Wyb.acc should be"):
        GRU4Rec.load(tmp_path / "m.pt")


def test_only_retrainable_parameters_may_change(successor_events: Make) -> None:
    old, new = _old_and_new(successor_events)
    model = GRU4Rec(device="cpu", **SMALL).fit(old)
    model.config = model.config.replace(layers=[8], loss="bpr-max")
    with pytest.raises(ConfigError, match=r"cannot change: .*layers \(\(16,\) -> \(8,\)\)"):
        model.fit(new, retrain=True)
    assert model.n_items == 30
    model.config = model.config.replace(layers=[16], loss="cross-entropy", n_epochs=1,
                                        learning_rate=0.05)
    model.fit(new, retrain=True)
    assert len(model.history_) == 1 and model.n_items == 40


def test_retraining_needs_a_trained_model_and_fresh_state_needs_retraining(
        successor_events: Make) -> None:
    old, _ = _old_and_new(successor_events)
    with pytest.raises(NotFittedError):
        GRU4Rec(device="cpu", **SMALL).fit(old, retrain=True)
    with pytest.raises(ConfigError, match="fresh_optimizer applies to retrain=True only"):
        GRU4Rec(device="cpu", **SMALL).fit(old, fresh_optimizer=True)
