"""Known-answer and float64-reference tests of the GRU4Rec losses (ALGORITHM.md §5).

The references below are written straight from the formulas with NumPy loops, in float64;
gradients are checked against central finite differences of those references.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gru4rec.nn import losses
from gru4rec.nn.losses import bpr_max_loss, cross_entropy_loss, negative_mask

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
        loss, grad = fn(scores.detach(), *args)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return (grad * grad_out, None) + (None,) * 5


def fused_cross_entropy_loss(scores, batch_size, log_q=None, logq=0.0):
    return _ValueAndGrad.apply(scores, losses.xe_value_and_grad, batch_size, log_q, logq)


def fused_bpr_max_loss(scores, batch_size, bpreg, elu_param):
    mask = negative_mask(*scores.shape, scores.device).to(scores.dtype)
    return _ValueAndGrad.apply(scores, losses.bpr_max_value_and_grad, batch_size, bpreg,
                               elu_param, mask)


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
