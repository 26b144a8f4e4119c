"""Known-answer and float64-reference tests of the GRU4Rec losses (docs/algorithm.md §5).

The references below are written straight from the formulas with NumPy loops, in float64;
gradients are checked against central finite differences of those references.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gru4rec import GRU4RecConfig
from gru4rec.backend import TorchOps
from gru4rec.backend.torch_ops import negative_mask
from gru4rec.nn import losses
from gru4rec.nn.losses import (
    bpr_max_loss,
    cross_entropy_loss,
    row_losses,
    step_loss,
)

EPS = 1e-24
FD_STEP = 1e-6


# ----------------------------------------------------------------------------- references


def ref_cross_entropy(r: np.ndarray, b: int, log_q: np.ndarray | None = None,
                      logq: float = 0.0) -> float:
    """sum_j -log(softmax(R_j - logq * log Q)[j] + eps) / B."""
    m, n = r.shape
    total = 0.0
    for j in range(m):
        row = [r[j, k] - (logq * log_q[k] if logq > 0 else 0.0) for k in range(n)]
        top = max(row)
        denom = sum(math.exp(x - top) for x in row)
        p_pos = math.exp(row[j] - top) / denom
        total += -math.log(p_pos + EPS)
    return total / b


def elu(x: float, alpha: float) -> float:
    return x if x > 0 else alpha * (math.exp(x) - 1.0)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def ref_bpr_max(r: np.ndarray, b: int, bpreg: float, elu_param: float) -> float:
    """sum_j [-log(sum_k s_jk sig(r_j - R_jk) + eps) + bpreg sum_k s_jk R_jk^2] / B,
    after the final activation; s_j = softmax of row j over k != j."""
    m, n = r.shape
    a = np.array([[elu(r[j, k], elu_param) if elu_param > 0 else r[j, k] for k in range(n)]
                  for j in range(m)])
    total = 0.0
    for j in range(m):
        negs = [k for k in range(n) if k != j]
        top = max(a[j, k] for k in negs)
        weights = {k: math.exp(a[j, k] - top) for k in negs}
        z = sum(weights.values())
        s = {k: w / z for k, w in weights.items()}
        hit = sum(s[k] * sigmoid(a[j, j] - a[j, k]) for k in negs)
        reg = sum(s[k] * a[j, k] ** 2 for k in negs)
        total += -math.log(hit + EPS) + bpreg * reg
    return total / b


def finite_difference_grad(f, r: np.ndarray) -> np.ndarray:
    """Central differences of scalar f at every entry of r (float64)."""
    grad = np.zeros_like(r)
    for idx in np.ndindex(*r.shape):
        up, down = r.copy(), r.copy()
        up[idx] += FD_STEP
        down[idx] -= FD_STEP
        grad[idx] = (f(up) - f(down)) / (2 * FD_STEP)
    return grad


def torch_value_and_grad(loss_fn, r: np.ndarray) -> tuple[float, np.ndarray]:
    scores = torch.tensor(r, dtype=torch.float64, requires_grad=True)
    loss = loss_fn(scores)
    assert loss.dtype == torch.float64
    loss.backward()
    return float(loss.detach()), scores.grad.numpy()


def random_scores(m: int, n: int, seed: int, tie: bool) -> np.ndarray:
    r = np.random.default_rng(seed).normal(0.0, 1.5, size=(m, n))
    if tie:  # an in-batch negative with exactly the positive's score
        r[0, 1] = r[0, 0]
    return r


SHAPES = [(3, 5), (4, 4)]
B = 8



class _ValueAndGrad(torch.autograd.Function):
    """Exposes a ``*_value_and_grad`` function (loss and gradient in one pass, as the
    training step uses them) through autograd, so it is checked like the plain losses."""

    @staticmethod
    def forward(ctx, scores, fn, *args):  # type: ignore[override]
        loss, grad = fn(scores.detach().clone(), *args)  # the scores are overwritten
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return (grad * grad_out, None) + (None,) * 5


def fused_cross_entropy_loss(scores, batch_size, log_q=None, logq=0.0):
    return _ValueAndGrad.apply(scores, TorchOps().cross_entropy_grad, batch_size, log_q,
                               logq)


def fused_bpr_max_loss(scores, batch_size, bpreg, elu_param):
    return _ValueAndGrad.apply(scores, TorchOps().bpr_max_grad, batch_size, bpreg, elu_param)


# The plain losses and the one-pass value-and-gradient versions the training step uses:
# both must match the same reference.
IMPLS = {"cross_entropy_loss": losses.cross_entropy_loss, "bpr_max_loss": losses.bpr_max_loss,
         "fused_cross_entropy_loss": fused_cross_entropy_loss,
         "fused_bpr_max_loss": fused_bpr_max_loss}
XE_IMPLS = ["cross_entropy_loss", "fused_cross_entropy_loss"]
BPR_IMPLS = ["bpr_max_loss", "fused_bpr_max_loss"]


# ----------------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("impl", XE_IMPLS)
def test_cross_entropy_known_answer(impl: str) -> None:
    loss_fn = IMPLS[impl]
    # row 0: softmax [2, 1, 1] / 4 -> p = 1/2; row 1: [1, 3, 1] / 5 -> p = 3/5
    r = torch.tensor([[math.log(2), 0.0, 0.0], [0.0, math.log(3), 0.0]], dtype=torch.float64)
    expected = (math.log(2) + math.log(5 / 3)) / 2
    assert float(loss_fn(r, 2)) == pytest.approx(expected, rel=1e-12)
    # divided by the configured batch size B, not by the number of rows M
    assert float(loss_fn(r, 8)) == pytest.approx(expected * 2 / 8, rel=1e-12)


@pytest.mark.parametrize("impl", XE_IMPLS)
def test_cross_entropy_known_answer_with_logq(impl: str) -> None:
    loss_fn = IMPLS[impl]
    # subtracting log Q = [log 2, 0, log 2] from [log 2, 0, 0] gives [0, 0, -log 2]:
    # softmax[0] = 1 / (1 + 1 + 1/2) = 2/5
    r = torch.tensor([[math.log(2), 0.0, 0.0]], dtype=torch.float64)
    log_q = torch.tensor([math.log(2), 0.0, math.log(2)], dtype=torch.float64)
    assert float(loss_fn(r, 1, log_q, 1.0)) == pytest.approx(math.log(5 / 2))
    # logq = 0 switches the correction off even when log_q is given
    assert float(loss_fn(r, 1, log_q, 0.0)) == pytest.approx(math.log(2))


@pytest.mark.parametrize("impl", XE_IMPLS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("logq", [0.0, 1.0, 0.5])
@pytest.mark.parametrize("tie", [False, True])
def test_cross_entropy_matches_reference(impl: str, shape: tuple[int, int], logq: float,
                                         tie: bool) -> None:
    loss_fn = IMPLS[impl]
    m, n = shape
    r = random_scores(m, n, seed=m * 10 + n, tie=tie)
    log_q = np.log(np.random.default_rng(1).integers(1, 50, size=n).astype(np.float64))
    log_q_t = torch.tensor(log_q, dtype=torch.float64)

    value, grad = torch_value_and_grad(lambda s: loss_fn(s, B, log_q_t, logq), r)

    def ref(x: np.ndarray) -> float:
        return ref_cross_entropy(x, B, log_q, logq)

    assert value == pytest.approx(ref(r), rel=1e-12)
    np.testing.assert_allclose(grad, finite_difference_grad(ref, r), rtol=1e-5, atol=1e-9)


def test_cross_entropy_logq_changes_the_value() -> None:
    r = random_scores(3, 5, seed=3, tie=False)
    log_q = torch.log(torch.tensor([1.0, 5.0, 20.0, 3.0, 7.0], dtype=torch.float64))
    s = torch.tensor(r)
    assert float(cross_entropy_loss(s, B, log_q, 1.0)) != pytest.approx(
        float(cross_entropy_loss(s, B)))


# ----------------------------------------------------------------------------- bpr-max


@pytest.mark.parametrize("impl", BPR_IMPLS)
def test_bpr_max_known_answer(impl: str) -> None:
    loss_fn = IMPLS[impl]
    # row 0: positive 0, negatives [0, log 3] -> s = [1/4, 3/4],
    #   sigmoid(0 - 0) = 1/2, sigmoid(0 - log 3) = 1/4: hit = 1/8 + 3/16 = 5/16
    #   reg = 3/4 * log(3)^2
    # row 1: positive 0, negatives [0, 0] -> s = [1/2, 1/2], hit = 1/2, reg = 0
    r = torch.tensor([[0.0, 0.0, math.log(3)], [0.0, 0.0, 0.0]], dtype=torch.float64)
    no_reg = (math.log(16 / 5) + math.log(2)) / 2
    assert float(loss_fn(r, 2, 0.0, 0.0)) == pytest.approx(no_reg, rel=1e-12)
    with_reg = no_reg + 0.75 * math.log(3) ** 2 / 2
    assert float(loss_fn(r, 2, 1.0, 0.0)) == pytest.approx(with_reg, rel=1e-12)


@pytest.mark.parametrize("impl", BPR_IMPLS)
def test_bpr_max_known_answer_elu(impl: str) -> None:
    loss_fn = IMPLS[impl]
    # ELU(alpha=1) of -log 2 is 1/2 - 1 = -1/2; positive 0 on row 0 (1 x 2 matrix):
    # single negative with s = 1: hit = sigmoid(0 - (-1/2)), reg = 1/4
    r = torch.tensor([[0.0, -math.log(2)]], dtype=torch.float64)
    expected = -math.log(1 / (1 + math.exp(-0.5))) + 2.0 * 0.25
    assert float(loss_fn(r, 1, 2.0, 1.0)) == pytest.approx(expected, rel=1e-12)


def test_negative_mask_excludes_only_the_positive() -> None:
    mask = negative_mask(3, 5, torch.device("cpu"))
    expected = np.ones((3, 5))
    expected[[0, 1, 2], [0, 1, 2]] = 0
    np.testing.assert_array_equal(mask.numpy(), expected)


@pytest.mark.parametrize("impl", BPR_IMPLS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bpreg", [0.0, 1.0, 0.25])
@pytest.mark.parametrize("elu_param", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("tie", [False, True])
def test_bpr_max_matches_reference(impl: str, shape: tuple[int, int], bpreg: float,
                                   elu_param: float, tie: bool) -> None:
    loss_fn = IMPLS[impl]
    m, n = shape
    r = random_scores(m, n, seed=100 + m * 10 + n, tie=tie)

    value, grad = torch_value_and_grad(lambda s: loss_fn(s, B, bpreg, elu_param), r)

    def ref(x: np.ndarray) -> float:
        return ref_bpr_max(x, B, bpreg, elu_param)

    assert value == pytest.approx(ref(r), rel=1e-12)
    np.testing.assert_allclose(grad, finite_difference_grad(ref, r), rtol=1e-5, atol=1e-9)


def test_bpr_max_ignores_the_positive_in_the_negative_softmax() -> None:
    # Raising the positive score may only lower the loss (it is not its own negative).
    r = torch.tensor(random_scores(3, 5, seed=7, tie=False))
    higher = r.clone()
    higher[1, 1] += 5.0
    assert float(bpr_max_loss(higher, B, 0.0, 0.0)) < float(
        bpr_max_loss(r, B, 0.0, 0.0))
    ref_before, ref_after = ref_bpr_max(r.numpy(), B, 0.0, 0.0), ref_bpr_max(
        higher.numpy(), B, 0.0, 0.0)
    assert float(bpr_max_loss(higher, B, 0.0, 0.0)) - float(
        bpr_max_loss(r, B, 0.0, 0.0)) == pytest.approx(ref_after - ref_before, rel=1e-10)


# ----------------------------------------------------------------------------- all losses
# step_loss: logQ shift, final activation, then any of the six losses (docs/algorithm.md §5).


def _ref_activate(r: np.ndarray, act: str) -> np.ndarray:
    if act == "softmax":
        e = np.exp(r - r.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if act in ("linear", "softmax_logit"):
        return r.copy()
    if act == "tanh":
        return np.tanh(r)
    alpha = float(act.split("-")[1])  # elu-X
    return np.where(r > 0, r, alpha * (np.exp(np.minimum(r, 0)) - 1))


def _ref_neg_softmax(row: np.ndarray, j: int) -> dict[int, float]:
    negs = [k for k in range(len(row)) if k != j]
    top = max(row[k] for k in negs)
    w = {k: math.exp(row[k] - top) for k in negs}
    z = sum(w.values())
    return {k: v / z for k, v in w.items()}


def ref_row_loss(loss: str, x: np.ndarray, j: int, bpreg: float, smoothing: float) -> float:
    """One row's loss from the formulas of docs/algorithm.md §5, in plain float64 Python."""
    row, n = x[j], x.shape[1]
    targets = [(1 - smoothing + smoothing / n) if k == j else smoothing / n for k in range(n)]
    if loss == "cross-entropy":
        return -sum(t * math.log(row[k] + EPS) for k, t in enumerate(targets))
    if loss == "xe_logit":
        top = max(row)
        lse = top + math.log(sum(math.exp(v - top) for v in row))
        return -sum(t * (row[k] - lse) for k, t in enumerate(targets))
    if loss == "bpr-max":
        s = _ref_neg_softmax(row, j)
        hit = sum(w * sigmoid(row[j] - row[k]) for k, w in s.items())
        return -math.log(hit + EPS) + bpreg * sum(w * row[k] ** 2 for k, w in s.items())
    if loss == "top1-max":
        s = _ref_neg_softmax(row, j)
        return sum(w * (sigmoid(row[k] - row[j]) + sigmoid(row[k] ** 2))
                   for k, w in s.items())
    if loss == "top1":
        return (sum(sigmoid(row[k] - row[j]) + sigmoid(row[k] ** 2) for k in range(n)) / n
                - sigmoid(row[j] ** 2) / n)
    if loss == "bpr":
        return -sum(math.log(sigmoid(row[j] - row[k])) for k in range(n))
    raise AssertionError(loss)


def ref_step_loss(r: np.ndarray, loss: str, act: str, b: int, bpreg: float = 0.0,
                  smoothing: float = 0.0, log_q: np.ndarray | None = None,
                  logq: float = 0.0) -> float:
    if log_q is not None and logq > 0:
        r = r - logq * log_q
    x = _ref_activate(r, act)
    return sum(ref_row_loss(loss, x, j, bpreg, smoothing) for j in range(r.shape[0])) / b


STEP_CASES = [
    ("cross-entropy", "softmax", 0.0, 0.0), ("cross-entropy", "softmax", 0.0, 0.2),
    ("cross-entropy", "softmax", 0.1, 1.0), ("xe_logit", "softmax_logit", 0.0, 1.0),
    ("xe_logit", "softmax_logit", 0.25, 0.0), ("bpr-max", "elu-0.5", 0.0, 0.0),
    ("bpr-max", "linear", 0.0, 0.0), ("bpr-max", "tanh", 0.0, 0.0),
    ("top1-max", "linear", 0.0, 0.0), ("top1-max", "elu-1.0", 0.0, 0.0),
    ("top1", "linear", 0.0, 0.0), ("top1", "tanh", 0.0, 0.0), ("bpr", "linear", 0.0, 0.0),
    ("bpr", "elu-0.5", 0.0, 0.0),
]


@pytest.mark.parametrize(("loss", "act", "smoothing", "logq"), STEP_CASES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tie", [False, True])
def test_every_loss_matches_its_formula(loss: str, act: str, smoothing: float, logq: float,
                                        shape: tuple[int, int], tie: bool) -> None:
    m, n = shape
    r = random_scores(m, n, seed=200 + m * 10 + n, tie=tie)
    log_q = np.log(np.random.default_rng(3).integers(1, 50, size=n).astype(np.float64))
    cfg = GRU4RecConfig().replace(loss=loss, final_act=act, smoothing=smoothing, logq=logq,
                                  bpreg=0.5, batch_size=B)
    value, grad = torch_value_and_grad(
        lambda s: step_loss(s, cfg, torch.tensor(log_q, dtype=torch.float64)), r)

    def ref(x: np.ndarray) -> float:
        return ref_step_loss(x, loss, act, B, 0.5 if loss == "bpr-max" else 0.0, smoothing,
                             log_q, logq)

    assert value == pytest.approx(ref(r), rel=1e-10)
    np.testing.assert_allclose(grad, finite_difference_grad(ref, r), rtol=1e-5, atol=1e-8)


def test_top1_max_known_answer() -> None:
    # positive 0, negatives [0, log 3] with softmax weights [1/4, 3/4]:
    # 1/4 (sig(0) + sig(0)) + 3/4 (sig(log 3) + sig(log(3)^2))
    x = torch.tensor([[0.0, 0.0, math.log(3)]], dtype=torch.float64)
    want = 0.25 * (0.5 + 0.5) + 0.75 * (0.75 + sigmoid(math.log(3) ** 2))
    assert float(row_losses("top1-max", x)[0]) == pytest.approx(want, rel=1e-12)


def test_smoothing_spreads_the_target() -> None:
    # uniform probabilities: every label distribution gives -log(1/N)
    x = torch.full((2, 4), 0.25, dtype=torch.float64)
    for eps in (0.0, 0.1, 0.9):
        got = row_losses("cross-entropy", x, smoothing=eps)
        np.testing.assert_allclose(got.numpy(), [math.log(4)] * 2, rtol=1e-12)
    # a confident correct prediction costs more with smoothing
    x = torch.tensor([[0.97, 0.01, 0.01, 0.01]], dtype=torch.float64)
    assert float(row_losses("cross-entropy", x, smoothing=0.2)[0]) > float(
        row_losses("cross-entropy", x)[0])


@pytest.mark.parametrize("loss", ["cross-entropy", "bpr-max"])
def test_step_loss_equals_the_two_common_losses(loss: str) -> None:
    r = torch.tensor(random_scores(4, 9, seed=9, tie=True))
    log_q = torch.rand(9, dtype=torch.float64)
    cfg = GRU4RecConfig().replace(loss=loss, logq=1.0 if loss == "cross-entropy" else 0.0,
                                  batch_size=B)
    want = cross_entropy_loss(r, B, log_q, 1.0) if loss == "cross-entropy" \
        else bpr_max_loss(r, B, cfg.bpreg, cfg.elu_param)
    assert float(step_loss(r, cfg, log_q)) == pytest.approx(float(want), rel=1e-12)
