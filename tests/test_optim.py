"""Sparse Adagrad with momentum (ALGORITHM.md §6) against a dense float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gru4rec.nn.optim import SparseOptimizer, sum_duplicate_rows

LR = 0.1
ROW_LISTS = [[3, 1, 3, 0, 3], [5, 5, 2], [1, 4, 1, 1, 6, 0], [3, 1, 3, 0, 3]]


class DenseReference:
    """acc += g^2; step = -lr g / sqrt(acc + 1e-6); v = m v + step; p += v (or p += step)."""

    def __init__(self, param: np.ndarray, lr: float, momentum: float) -> None:
        self.p = param.astype(np.float64).copy()
        self.acc = np.zeros_like(self.p)
        self.vel = np.zeros_like(self.p)
        self.lr, self.m = lr, momentum

    def step(self, grad: np.ndarray, touched: np.ndarray | None = None) -> None:
        """Full update, or only of the rows in ``touched`` (the others stay as they are)."""
        rows = np.arange(self.p.shape[0]) if touched is None else touched
        g = grad[rows]
        self.acc[rows] += g * g
        step = -self.lr * g / np.sqrt(self.acc[rows] + 1e-6)
        if self.m > 0:
            self.vel[rows] = self.m * self.vel[rows] + step
            self.p[rows] += self.vel[rows]
        else:
            self.p[rows] += step


def test_sum_duplicate_rows() -> None:
    rows = torch.tensor([3, 1, 3, 0, 3])
    grads = torch.arange(10, dtype=torch.float64).reshape(5, 2)
    uniq, summed = sum_duplicate_rows(rows, grads)
    got = dict(zip(uniq.tolist(), summed.tolist(), strict=True))
    assert sorted(got) == [0, 1, 3]
    assert got == {3: [0 + 4 + 8, 1 + 5 + 9], 1: [2, 3], 0: [6, 7]}
    assert summed.dtype == torch.float64


def test_sum_duplicate_rows_without_duplicates_is_a_permutation() -> None:
    rows = torch.tensor([4, 0, 2])
    grads = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    uniq, summed = sum_duplicate_rows(rows, grads)
    assert dict(zip(uniq.tolist(), summed[:, 0].tolist(), strict=True)) == {4: 1.0, 0: 2.0,
                                                                           2: 3.0}


@pytest.mark.parametrize("momentum", [0.0, 0.3])
def test_step_rows_matches_dense_reference(momentum: float) -> None:
    rng = np.random.default_rng(0)
    table0 = rng.normal(size=(8, 3))
    table = torch.tensor(table0, dtype=torch.float64)
    opt = SparseOptimizer({"W": table}, LR, momentum)
    ref = DenseReference(table0, LR, momentum)
    for rows_list in ROW_LISTS:
        rows = torch.tensor(rows_list)
        row_grads = torch.tensor(rng.normal(size=(len(rows_list), 3)), dtype=torch.float64)
        dense_grad = np.zeros_like(table0)
        np.add.at(dense_grad, np.array(rows_list), row_grads.numpy())  # scatter-sum
        touched = np.unique(rows_list)

        state = {"p": table, "acc": opt.acc["W"], **({"vel": opt.vel["W"]} if momentum else {})}
        before = {name: t.clone() for name, t in state.items()}
        uniq, summed = sum_duplicate_rows(rows, row_grads)
        opt.step_rows("W", uniq, summed)
        ref.step(dense_grad, touched)

        np.testing.assert_allclose(table.numpy(), ref.p, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.acc["W"].numpy(), ref.acc, rtol=1e-12, atol=1e-14)
        if momentum > 0:
            np.testing.assert_allclose(opt.vel["W"].numpy(), ref.vel, rtol=1e-12, atol=1e-14)
        untouched = np.setdiff1d(np.arange(8), touched)
        for name, old in before.items():
            assert torch.equal(state[name][untouched], old[untouched]), name


@pytest.mark.parametrize("momentum", [0.0, 0.3])
def test_step_dense_matches_dense_reference(momentum: float) -> None:
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(4, 5))
    w = torch.tensor(w0, dtype=torch.float64)
    opt = SparseOptimizer({"W": w}, LR, momentum)
    ref = DenseReference(w0, LR, momentum)
    for _ in range(4):
        g = rng.normal(size=(4, 5))
        opt.step_dense("W", torch.tensor(g, dtype=torch.float64))
        ref.step(g)
        np.testing.assert_allclose(w.numpy(), ref.p, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.acc["W"].numpy(), ref.acc, rtol=1e-12, atol=1e-14)


def test_first_step_known_answer() -> None:
    # first step: acc = g^2, step = -lr g / sqrt(g^2 + 1e-6) ~ -lr sign(g)
    w = torch.zeros(1, 2, dtype=torch.float64)
    opt = SparseOptimizer({"W": w}, 0.5, 0.0)
    opt.step_dense("W", torch.tensor([[2.0, -0.001]], dtype=torch.float64))
    expected = [-0.5 * 2 / np.sqrt(4 + 1e-6), 0.5 * 0.001 / np.sqrt(1e-6 + 1e-6)]
    np.testing.assert_allclose(w.numpy()[0], expected, rtol=1e-12)


def test_momentum_carries_velocity_into_the_next_step() -> None:
    # two identical gradients of 1.0: step1 = -lr/sqrt(1+eps), step2 = -lr/sqrt(2+eps),
    # v2 = m * step1 + step2
    w = torch.zeros(1, 1, dtype=torch.float64)
    opt = SparseOptimizer({"W": w}, 1.0, 0.5)
    for _ in range(2):
        opt.step_rows("W", torch.tensor([0]), torch.ones(1, 1, dtype=torch.float64))
    s1, s2 = -1 / np.sqrt(1 + 1e-6), -1 / np.sqrt(2 + 1e-6)
    assert float(w[0, 0]) == pytest.approx(s1 + (0.5 * s1 + s2), rel=1e-12)
