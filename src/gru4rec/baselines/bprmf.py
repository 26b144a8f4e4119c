"""BPR-MF: matrix factorisation trained with the BPR loss, the training sessions acting as
users (BASELINES.md §1).

Model. Item factors I (n_items, F), session factors U (n_sessions, F) and item biases b
(n_items,). For a session s, a positive item p (an event of s) and a negative item n,
x = u_s . (i_p - i_n) + b_p - b_n and the step ascends ln sigmoid(x) with weight decay.

Training, per epoch, with g = 1 - sigmoid(x) and the values before the update:

    u_s += lr * (g * (i_p - i_n) - lambda_session * u_s)
    i_p += lr * (g * u_s - lambda_item * i_p)
    i_n += lr * (-g * u_s - lambda_item * i_n)
    b_p += lr * (g - lambda_item * b_p)     (only with item_bias=True)
    b_n += lr * (-g - lambda_item * b_n)    (only with item_bias=True)

Random draws, all from the model's generator (``seed``, reset at every fit), in this order:
I, then U, each ``uniform(-sigma, sigma, (rows, F))`` (``normal(0, sigma, (rows, F))`` with
``init_normal``); then per epoch ``permutation(N)`` of the N events (in the sorted log's
order) and ``integers(0, n_items, N)``, the k-th being the negative of the k-th visited event.

Mini-batches. The visited events are taken ``batch_size`` at a time: every update of a batch
is computed from the tables as they were at the batch's start and the updates are summed into
them (an item that is the positive or negative of several events gets all their updates, in
the order: the positives' updates in visiting order, then the negatives'). ``batch_size=1`` is
exactly the reference's sequential SGD; larger batches trade that for speed (one NumPy step
per batch instead of a Python step per event).

Predict. After the prefix x_1..x_c, u = the mean of the item factors of x_1..x_c (repeats
counted, the current item included) and s_j = i_j . u + b_j; an empty prefix gives s = b.

Differences from the reference, and why:

* The negative is drawn uniformly over the items, as intended. The reference takes the item
  of a random row among the first n_items rows of its merged frame, a bug that samples only
  from the start of the log. As in the reference, the negative may equal the positive; then
  both updates are computed from the pre-update values and added.
* The reference never updates the item bias, so it stays 0; the default
  ``item_bias=False`` keeps that. ``item_bias=True`` learns it (textbook BPR), but with the
  default ``lambda_item=0`` each bias grows with the item's event count until it outweighs
  the factor products, and the model becomes a popularity ranker (yoochoose100k, 10 epochs,
  conservative ties: Recall@20 0.090 against 0.423 without it; Pop: 0.089).
* ``batch_size`` (ours) vectorises the loop, see above; 1 reproduces the reference.
* The session factors are training-only: test sessions are new, so the reference never uses
  them at prediction time either. They are kept in ``session_factors_`` after ``fit`` for
  inspection but are not saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from gru4rec.baselines.base import Baseline, Scores, TrainLog, check_state
from gru4rec.baselines.params import Param, boolean, integer, number

__all__ = ["BPRMF", "SGDStep", "batch_update", "sgd_epoch"]


class BPRMF(Baseline):
    """Matrix factorisation with the BPR loss; a session is scored by the mean of its items'
    factors.

    Parameters: ``n_factors`` (100), ``n_iterations`` (10 epochs), ``learning_rate`` (0.01),
    ``lambda_session`` (0), ``lambda_item`` (0), ``sigma`` (0.05: init scale),
    ``init_normal`` (False: uniform init), ``item_bias`` (False: b stays 0), ``batch_size``
    (100 events per vectorised update; 1: the reference's sequential SGD).

    Learned state: ``item_factors_`` (n_items, F) and ``item_bias_`` (n_items,) float64;
    after ``fit`` only, ``session_factors_`` (n_sessions, F) float64 (not saved).
    """

    name = "bprmf"
    PARAMS: ClassVar[dict[str, Param]] = {
        "n_factors": Param(100, integer(1), "latent factors F"),
        "n_iterations": Param(10, integer(0), "training epochs"),
        "learning_rate": Param(0.01, number(0.0), "SGD step size"),
        "lambda_session": Param(0.0, number(0.0), "weight decay of the session factors"),
        "lambda_item": Param(0.0, number(0.0), "weight decay of the item factors and biases"),
        "sigma": Param(0.05, number(0.0), "init scale: U(-sigma, sigma) or N(0, sigma^2)"),
        "init_normal": Param(False, boolean, "normal instead of uniform initialisation"),
        "item_bias": Param(False, boolean, "learn the item biases (the reference leaves "
                           "them 0; with lambda_item=0 they turn the model into Pop)"),
        "batch_size": Param(100, integer(1), "events per vectorised update (1: sequential "
                            "SGD, as the reference)"),
    }
    item_factors_: np.ndarray
    item_bias_: np.ndarray
    session_factors_: np.ndarray

    def _fit(self, log: TrainLog) -> None:
        p = self.params
        self.item_factors_ = self._init(log.n_items)
        self.session_factors_ = self._init(log.n_sessions)
        self.item_bias_ = np.zeros(log.n_items)
        step = SGDStep(p["learning_rate"], p["lambda_session"], p["lambda_item"],
                       p["item_bias"])
        sessions = log.session_of()
        for _ in range(p["n_iterations"]):
            order = self._rng.permutation(len(log.items))
            negatives = self._rng.integers(0, log.n_items, size=len(order))
            sgd_epoch(self.session_factors_, self.item_factors_, self.item_bias_,
                      (sessions[order], log.items[order], negatives), step, p["batch_size"])

    def _init(self, rows: int) -> np.ndarray:
        """(rows, F) initial factors drawn from the model's generator."""
        shape, sigma = (rows, self.params["n_factors"]), self.params["sigma"]
        if self.params["init_normal"]:
            return self._rng.normal(0.0, sigma, shape)
        return self._rng.uniform(-sigma, sigma, shape)

    def _score(self, prefixes: list[np.ndarray]) -> Scores:
        lengths = np.array([len(p) for p in prefixes], dtype=np.int64)
        rows = np.repeat(np.arange(len(prefixes), dtype=np.int64), lengths)
        items = np.concatenate(prefixes) if prefixes else np.zeros(0, dtype=np.int64)
        factors = self.item_factors_
        sums = np.zeros((len(prefixes), factors.shape[1]))
        np.add.at(sums, rows, factors[items])  # in prefix order, as a running sum would
        means = sums / np.maximum(lengths, 1)[:, None]  # an empty prefix keeps u = 0
        scores: np.ndarray = means @ factors.T + self.item_bias_
        return scores

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_, "item_bias": self.item_bias_}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        check_state(state, ["item_factors", "item_bias"])
        n, f = len(self.item_index_), self.params["n_factors"]
        if state["item_factors"].shape != (n, f):
            raise ValueError(f"item_factors must be ({n}, {f}), got "
                             f"{state['item_factors'].shape}")
        if state["item_bias"].shape != (n,):
            raise ValueError(f"item_bias must be ({n},), got {state['item_bias'].shape}")
        self.item_factors_ = state["item_factors"].astype(np.float64)
        self.item_bias_ = state["item_bias"].astype(np.float64)


@dataclass(frozen=True)
class SGDStep:
    """The hyperparameters of one BPR update."""

    learning_rate: float
    lambda_session: float
    lambda_item: float
    item_bias: bool


def sgd_epoch(sessions_f: np.ndarray, items_f: np.ndarray, bias: np.ndarray,
              visits: tuple[np.ndarray, np.ndarray, np.ndarray], step: SGDStep,
              batch_size: int) -> None:
    """One pass over ``visits`` = (session, positive, negative), each (N,) int64 in visiting
    order, updating in place ``sessions_f`` (S, F), ``items_f`` (n_items, F) and ``bias``
    (n_items,), ``batch_size`` events per update (see the module docstring)."""
    sess, pos, neg = visits
    for lo in range(0, len(sess), batch_size):
        hi = lo + batch_size
        batch_update(sessions_f, items_f, bias, (sess[lo:hi], pos[lo:hi], neg[lo:hi]), step)


def batch_update(sessions_f: np.ndarray, items_f: np.ndarray, bias: np.ndarray,
                 batch: tuple[np.ndarray, np.ndarray, np.ndarray], step: SGDStep) -> None:
    """The summed updates of the B events ``batch`` = (session, positive, negative), each
    (B,) int64, all computed from the tables as they are on entry."""
    s, p, n = batch
    lr, lam_i = step.learning_rate, step.lambda_item
    u, ip, i_n, bp, bn = sessions_f[s], items_f[p], items_f[n], bias[p], bias[n]  # copies
    diff = ip - i_n
    x = (u * diff).sum(axis=1) + bp - bn
    with np.errstate(over="ignore"):  # exp overflow -> g = 0, the exact limit
        g = 1.0 / (1.0 + np.exp(x))  # = 1 - sigmoid(x)
    gu = g[:, None] * u
    # np.add.at sums the updates of repeated rows (unbuffered), where a[idx] += would not
    np.add.at(sessions_f, s, lr * (g[:, None] * diff - step.lambda_session * u))
    np.add.at(items_f, np.r_[p, n], lr * np.r_[gu - lam_i * ip, -gu - lam_i * i_n])
    if step.item_bias:
        np.add.at(bias, np.r_[p, n], lr * np.r_[g - lam_i * bp, -g - lam_i * bn])
