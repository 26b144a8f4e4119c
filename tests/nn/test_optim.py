"""Sparse Adagrad with momentum (docs/algorithm.md §6) against a dense float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gru4rec.backend.torch_ops import sum_rows
from gru4rec.nn.optim import SparseOptimizer

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
    uniq, summed = sum_rows([(rows, grads)], grads.shape[1])
    got = dict(zip(uniq.tolist(), summed.tolist(), strict=True))
    assert sorted(got) == [0, 1, 3]
    assert got == {3: [0 + 4 + 8, 1 + 5 + 9], 1: [2, 3], 0: [6, 7]}
    assert summed.dtype == torch.float64


def test_sum_duplicate_rows_without_duplicates_is_a_permutation() -> None:
    rows = torch.tensor([4, 0, 2])
    grads = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    uniq, summed = sum_rows([(rows, grads)], grads.shape[1])
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
        uniq, summed = sum_rows([(rows, row_grads)], row_grads.shape[1])
        opt.update_rows("W", [(uniq, summed)])
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
        opt.update_dense({"W": torch.tensor(g, dtype=torch.float64)})
        ref.step(g)
        np.testing.assert_allclose(w.numpy(), ref.p, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.acc["W"].numpy(), ref.acc, rtol=1e-12, atol=1e-14)


def test_first_step_known_answer() -> None:
    # first step: acc = g^2, step = -lr g / sqrt(g^2 + 1e-6) ~ -lr sign(g)
    w = torch.zeros(1, 2, dtype=torch.float64)
    opt = SparseOptimizer({"W": w}, 0.5, 0.0)
    opt.update_dense({"W": torch.tensor([[2.0, -0.001]], dtype=torch.float64)})
    expected = [-0.5 * 2 / np.sqrt(4 + 1e-6), 0.5 * 0.001 / np.sqrt(1e-6 + 1e-6)]
    np.testing.assert_allclose(w.numpy()[0], expected, rtol=1e-12)


def test_momentum_carries_velocity_into_the_next_step() -> None:
    # two identical gradients of 1.0: step1 = -lr/sqrt(1+eps), step2 = -lr/sqrt(2+eps),
    # v2 = m * step1 + step2
    w = torch.zeros(1, 1, dtype=torch.float64)
    opt = SparseOptimizer({"W": w}, 1.0, 0.5)
    for _ in range(2):
        opt.update_rows("W", [(torch.tensor([0]), torch.ones(1, 1, dtype=torch.float64))])
    s1, s2 = -1 / np.sqrt(1 + 1e-6), -1 / np.sqrt(2 + 1e-6)
    assert float(w[0, 0]) == pytest.approx(s1 + (0.5 * s1 + s2), rel=1e-12)


# ----------------------------------------------------------------------------- all optimisers


class DenseAdaptReference:
    """Every optimiser of docs/algorithm.md §6 on a float64 array, updating the rows it is given
    (summed gradients of duplicate rows) and leaving the others alone; Adam counts t per
    row."""

    def __init__(self, param: np.ndarray, adapt: str, decay: tuple[float, ...], lr: float,
                 momentum: float) -> None:
        self.p = param.astype(np.float64).copy()
        self.acc, self.acc2, self.vel = (np.zeros_like(self.p) for _ in range(3))
        self.count = np.zeros(self.p.shape[0])
        self.adapt, self.decay, self.lr, self.m = adapt, decay, lr, momentum

    def step(self, rows: np.ndarray, g: np.ndarray) -> None:
        eps = 1e-6
        a, d = self.adapt, self.decay
        if a == "adagrad":
            self.acc[rows] += g * g
            step = -self.lr * g / np.sqrt(self.acc[rows] + eps)
        elif a == "rmsprop":
            self.acc[rows] = d[0] * self.acc[rows] + (1 - d[0]) * g * g
            step = -self.lr * g / np.sqrt(self.acc[rows] + eps)
        elif a == "adam":
            self.count[rows] += 1
            t = self.count[rows][:, None]
            self.acc[rows] = d[0] * self.acc[rows] + (1 - d[0]) * g
            self.acc2[rows] = d[1] * self.acc2[rows] + (1 - d[1]) * g * g
            m_hat = self.acc[rows] / (1 - d[0] ** t)
            v_hat = self.acc2[rows] / (1 - d[1] ** t)
            step = -self.lr * m_hat / (np.sqrt(v_hat) + eps)
        elif a == "adadelta":
            self.acc[rows] = d[0] * self.acc[rows] + (1 - d[0]) * g * g
            u = g * np.sqrt(self.acc2[rows] + eps) / np.sqrt(self.acc[rows] + eps)
            self.acc2[rows] = d[0] * self.acc2[rows] + (1 - d[0]) * u * u
            step = -self.lr * u
        else:
            step = -self.lr * g
        if self.m > 0:
            self.vel[rows] = self.m * self.vel[rows] + step
            step = self.vel[rows]
        self.p[rows] += step


ADAPT_CASES = [("adagrad", ()), ("rmsprop", (0.9,)), ("rmsprop", (0.5,)),
               ("adam", (0.9, 0.999)), ("adam", (0.5, 0.8)), ("adadelta", (0.95,)),
               ("sgd", ())]


@pytest.mark.parametrize(("adapt", "decay"), ADAPT_CASES)
@pytest.mark.parametrize("momentum", [0.0, 0.3])
def test_every_optimiser_matches_the_dense_reference_with_duplicate_rows(
        adapt: str, decay: tuple[float, ...], momentum: float) -> None:
    rng = np.random.default_rng(5)
    table0 = rng.normal(size=(8, 3))
    table = torch.tensor(table0)
    opt = SparseOptimizer({"W": table}, LR, momentum, adapt=adapt, adapt_params=decay)
    ref = DenseAdaptReference(table0, adapt, decay, LR, momentum)
    for rows_list in ROW_LISTS:
        grads = rng.normal(size=(len(rows_list), 3))
        opt.update_rows("W", [(torch.tensor(rows_list), torch.tensor(grads))])
        dense_grad = np.zeros_like(table0)
        np.add.at(dense_grad, np.array(rows_list), grads)
        touched = np.unique(rows_list)
        ref.step(touched, dense_grad[touched])
        np.testing.assert_allclose(table.numpy(), ref.p, rtol=1e-12, atol=1e-14)


def _step(opt: SparseOptimizer, dense: dict[str, torch.Tensor],
          rows: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """One mini-batch's update as the autograd step applies it: L2 and clipping, then the
    rows, then the dense weights."""
    opt.regularize(dense, rows)
    for name, part in rows.items():
        opt.update_rows(name, [part])
    opt.update_dense(dense)


@pytest.mark.parametrize(("adapt", "decay"), ADAPT_CASES)
def test_every_optimiser_updates_dense_weights_like_the_reference(
        adapt: str, decay: tuple[float, ...]) -> None:
    rng = np.random.default_rng(6)
    w0 = rng.normal(size=(4, 5))
    b0 = rng.normal(size=5)
    w, b = torch.tensor(w0), torch.tensor(b0)
    opt = SparseOptimizer({"W": w, "b": b}, LR, 0.2, adapt=adapt, adapt_params=decay)
    ref_w = DenseAdaptReference(w0, adapt, decay, LR, 0.2)
    ref_b = DenseAdaptReference(b0[None, :], adapt, decay, LR, 0.2)
    for _ in range(4):
        gw, gb = rng.normal(size=(4, 5)), rng.normal(size=5)
        _step(opt, {"W": torch.tensor(gw), "b": torch.tensor(gb)}, {})
        ref_w.step(np.arange(4), gw)
        ref_b.step(np.arange(1), gb[None, :])
        np.testing.assert_allclose(w.numpy(), ref_w.p, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b.numpy(), ref_b.p[0], rtol=1e-12, atol=1e-14)


def test_lmbd_adds_l2_to_the_gradient_of_the_touched_weights() -> None:
    rng = np.random.default_rng(7)
    table0, w0 = rng.normal(size=(6, 3)), rng.normal(size=(2, 2))
    rows = torch.tensor([1, 4])
    g_rows, g_w = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    got = {"T": torch.tensor(table0), "W": torch.tensor(w0)}
    _step(SparseOptimizer(got, LR, 0.0, adapt="sgd", lmbd=0.1),
          {"W": torch.tensor(g_w)}, {"T": (rows, torch.tensor(g_rows))})
    want_table = table0.copy()
    want_table[[1, 4]] -= LR * (g_rows + 0.1 * table0[[1, 4]])
    np.testing.assert_allclose(got["T"].numpy(), want_table, rtol=1e-12)  # others untouched
    np.testing.assert_allclose(got["W"].numpy(), w0 - LR * (g_w + 0.1 * w0), rtol=1e-12)


@pytest.mark.parametrize("cap", [0.5, 100.0])
def test_grad_cap_clips_the_global_norm_of_the_step(cap: float) -> None:
    g_rows = np.array([[3.0, 0.0]])
    g_w = np.array([0.0, 4.0])  # global norm 5 over both parameters
    got = {"T": torch.zeros(3, 2, dtype=torch.float64),
           "W": torch.zeros(2, dtype=torch.float64)}
    _step(SparseOptimizer(got, 1.0, 0.0, adapt="sgd", grad_cap=cap),
          {"W": torch.tensor(g_w)}, {"T": (torch.tensor([2]), torch.tensor(g_rows))})
    scale = min(1.0, cap / 5.0)
    np.testing.assert_allclose(got["T"].numpy()[2], -scale * g_rows[0], rtol=1e-12)
    np.testing.assert_allclose(got["W"].numpy(), -scale * g_w, rtol=1e-12)
