"""Sequence-aware GRU4Rec: user sequences, their states at the end of training, and the
evaluation that starts each test user from that state.

The references here replay one user at a time with the network's own GRU step (batch of
one, no schedule), so they check the user-parallel schedule, the captured final states and
the carry-over in the evaluation independently of how those are batched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gru4rec import GRU4Rec, evaluate
from gru4rec.data.events import Events
from gru4rec.data.sessions import ItemIndex, group_sequences
from gru4rec.errors import ConfigError, DataError
from gru4rec.metrics import target_ranks

PARAMS = {"layers": [12, 10], "batch_size": 8, "n_sample": 8, "n_epochs": 2,
          "dropout_p_hidden": 0.1}


def _log(n_users: int = 40, seed: int = 0) -> tuple[Events, Events]:
    """Users with 2-5 sessions of 1-5 events each; each user favours a block of items.
    Returns (train, test): every user's last session is test (some users only in test)."""
    rng = np.random.default_rng(seed)
    users, sessions, items, times = [], [], [], []
    t, sid = 0.0, 0
    for u in range(n_users):
        block = (u % 6) * 8
        for s in range(int(rng.integers(2, 6))):
            for _ in range(int(rng.integers(1, 6))):
                users.append(f"u{u}")
                sessions.append(sid)
                items.append(int(block + rng.integers(0, 8) if rng.random() < 0.8
                                 else rng.integers(0, 48)))
                times.append(t + s * 1000 + u)  # sessions of users interleave in time
                t += 0.001
            sid += 1
    ev = Events(np.array(sessions), np.array(items), np.array(times), np.array(users))
    last = {}
    for u, s in zip(ev.user, ev.session, strict=True):
        last[u] = s
    in_test = np.array([last[u] == s for u, s in zip(ev.user, ev.session, strict=True)])
    newcomers = np.isin(ev.user, ["u0", "u1"])  # these users have no training history
    return ev.select(~in_test & ~newcomers), ev.select(in_test)


@pytest.fixture(scope="module")
def log() -> tuple[Events, Events]:
    return _log()


@pytest.fixture(scope="module")
def carry(log: tuple[Events, Events]) -> GRU4Rec:
    return GRU4Rec(device="cpu", session_boundary="carry", **PARAMS).fit(log[0])


def _steps(model: GRU4Rec, items: np.ndarray, state: list[torch.Tensor]
           ) -> list[list[torch.Tensor]]:
    """The states after each of ``items`` (known item ids), one by one from ``state``."""
    net, out = model.net_, []
    idx = torch.as_tensor(model.item_index_.lookup(items))
    with torch.inference_mode():
        for i in range(len(items)):
            state = net.hidden(net.input_rows(idx[i:i + 1]), state, training=False)
            out.append(state)
    return out


def test_reset_with_a_user_column_trains_exactly_as_without(log) -> None:
    train = log[0]
    plain = Events(train.session, train.item, train.time)
    a = GRU4Rec(device="cpu", seed=3, **PARAMS).fit(plain)
    b = GRU4Rec(device="cpu", seed=3, session_boundary="reset", bptt=1, **PARAMS).fit(train)
    assert [r.loss for r in a.history_] == [r.loss for r in b.history_]
    assert b.user_states_ is None
    c = GRU4Rec(device="cpu", seed=3, session_boundary="carry", **PARAMS).fit(train)
    assert [r.loss for r in c.history_] != [r.loss for r in a.history_]
    # user-parallel: one example fewer per user than events (not per session)
    assert c.history_[0].n_events == len(train) - len(set(train.user))
    assert a.history_[0].n_events == len(train) - len(set(train.session))


def test_user_states_are_each_users_history_replayed_from_zero(log, carry) -> None:
    train = log[0]
    states = carry.user_states_
    assert states is not None and len(states) == len(set(train.user))
    for user in ("u2", "u17", "u39"):
        mine = train.select(train.user == user)
        order = np.argsort(mine.time, kind="stable")
        zero = carry.net_.zero_state(1)
        last = _steps(carry, mine.item[order], zero)[-1]
        row = int(states.rows(np.array([user]))[0])
        torch.testing.assert_close(states.states[row], torch.cat(last, 1)[0], rtol=1e-5,
                                   atol=1e-6)


def test_continue_state_equals_replaying_the_training_history(log, carry) -> None:
    train, test = log
    got = evaluate(carry, test, cutoffs=[1, 5], continue_state=True)
    ranks = []
    for user in np.unique(test.user):
        history = train.select(train.user == user)
        mine = test.select(test.user == user)
        mine = mine.select(np.argsort(mine.time, kind="stable"))
        state = carry.net_.zero_state(1)
        if len(history):
            state = _steps(carry, history.item[np.argsort(history.time, kind="stable")],
                           state)[-1]
        after = _steps(carry, mine.item, state)
        for i in range(len(mine) - 1):
            if mine.session[i + 1] != mine.session[i]:
                continue  # only the next item within a session counts
            h = after[i][-1]
            scores = h @ carry.net_.output_weights.t() + carry.net_.output_bias
            target = torch.as_tensor(carry.item_index_.lookup(mine.item[i + 1:i + 2]))
            ranks.append(float(target_ranks(scores, target)[0]))
    ranks_np = np.array(ranks)
    assert got.n_predictions == len(ranks_np) == len(test) - len(set(test.session))
    for k in (1, 5):
        assert got[f"Recall@{k}"] == pytest.approx(np.mean(ranks_np <= k), abs=1e-12)
        assert got[f"MRR@{k}"] == pytest.approx(
            np.mean(np.where(ranks_np <= k, 1 / ranks_np, 0)), rel=1e-6)
    # the same predictions from zero states score differently
    plain = evaluate(carry, test, cutoffs=[1, 5])
    assert plain.n_predictions == got.n_predictions
    assert plain["MRR@5"] != got["MRR@5"]


def test_the_user_states_survive_save_and_load(carry, log, tmp_path: Path) -> None:
    carry.save(tmp_path / "m.pt")
    back = GRU4Rec.load(tmp_path / "m.pt", device="cpu")
    assert back.user_states_ is not None
    assert list(back.user_states_.users.ids) == list(carry.user_states_.users.ids)
    assert torch.equal(back.user_states_.states, carry.user_states_.states)
    assert evaluate(back, log[1], continue_state=True).metrics == \
        evaluate(carry, log[1], continue_state=True).metrics


def test_sequences_keep_a_users_sessions_whole_in_the_order_they_start() -> None:
    # user c's sessions 5 and 6 overlap in time: each stays whole, 5 first (it starts first)
    ev = Events(np.array([1, 1, 2, 2, 3, 3, 4, 5, 6, 5, 6]),
                np.array([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]),
                np.array([5.0, 6, 1, 2, 3, 4, 7, 10, 11, 12, 13]),
                np.array(["a", "a", "a", "a", "b", "b", "a", "c", "c", "c", "c"]))
    index = ItemIndex.from_items(ev.item)
    seqs, starts, dropped = group_sequences(ev, index)
    assert list(seqs.session_ids) == ["a", "b", "c"] and dropped == 0
    assert index.ids[seqs.items].tolist() == [12, 13, 10, 11, 16, 14, 15, 17, 19, 18, 20]
    assert starts.tolist() == [True, False, True, False, True, True, False, True, False,
                               True, False]


def test_sequence_aware_errors(log, carry) -> None:
    train, test = log
    plain = Events(train.session, train.item, train.time)
    with pytest.raises(ConfigError, match="give the user column"):
        GRU4Rec(device="cpu", session_boundary="carry", **PARAMS).fit(plain)
    with pytest.raises(ConfigError, match="retraining a sequence-aware model"):
        GRU4Rec(device="cpu", session_boundary="carry", **PARAMS).fit(train, retrain=True)
    reset = GRU4Rec(device="cpu", **{**PARAMS, "n_epochs": 1}).fit(plain)
    with pytest.raises(ConfigError, match="session_boundary=carry"):
        evaluate(reset, test, continue_state=True)
    with pytest.raises(ConfigError, match="user column"):
        evaluate(carry, Events(test.session, test.item, test.time), continue_state=True)
    with pytest.raises(DataError, match="no user column"):
        evaluate(carry, Events(test.session, test.item, test.time), continue_state=True,
                 user_key="UserId")
    with pytest.raises(ConfigError, match="session_boundary must be one of reset, carry"):
        GRU4Rec(session_boundary="sometimes")
