"""GRU4Rec losses over the sampled score matrix (ALGORITHM §5).

R is the (M, M + n_sample) score matrix of a mini-batch: column j < M is the target of row j
(the other rows' targets are its in-batch negatives), columns >= M are the shared extra
negatives. The positive score of row j is R[j, j]. Every loss returns the SUM over rows
divided by the configured batch size B (not by M).

:func:`step_loss` is the general form used by the autograd training step: the logQ shift,
the final activation, then any of the six losses. :func:`cross_entropy_loss` and
:func:`bpr_max_loss` are its two common cases; the fused ``*_value_and_grad`` versions
below compute those two with their gradient in one pass for the fast step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gru4rec.config import GRU4RecConfig
from gru4rec.nn.activations import activation

__all__ = [
    "bpr_max_loss",
    "cross_entropy_loss",
    "bpr_max_value_and_grad",
    "xe_value_and_grad",
    "negative_mask",
    "row_losses",
    "step_loss",
]

EPS = 1e-24


def negative_mask(m: int, n_cols: int, device: torch.device) -> torch.Tensor:
    """(m, n_cols) float mask: 1 everywhere except 0 on the positive column of each row."""
    mask = torch.ones(m, n_cols, device=device)
    mask[:, :m].fill_diagonal_(0.0)
    return mask


def _positives(x: torch.Tensor) -> torch.Tensor:
    """(M, 1) the score of each row's positive column (column j of row j)."""
    return x.diagonal().unsqueeze(1)


def _softmax_negatives(x: torch.Tensor) -> torch.Tensor:
    """Softmax of each row over its negatives: the positive column gets weight exactly 0."""
    m = x.shape[0]
    is_pos = torch.zeros_like(x, dtype=torch.bool)
    is_pos[:, :m].fill_diagonal_(True)
    return torch.softmax(x.masked_fill(is_pos, float("-inf")), dim=1)


def _targets(x: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label-smoothed target distribution: 1 - eps + eps/N on the positive, eps/N elsewhere."""
    t = torch.full_like(x, smoothing / x.shape[1])
    t[:, : x.shape[0]].diagonal().add_(1.0 - smoothing)
    return t


def row_losses(loss: str, x: torch.Tensor, *, bpreg: float = 0.0,
               smoothing: float = 0.0) -> torch.Tensor:
    """Per-row losses (M,) of the activated (M, N) score matrix x (ALGORITHM §5).

    ``cross-entropy`` reads x as probabilities (final activation softmax), ``xe_logit`` as
    logits (softmax_logit); both take the label ``smoothing``. ``bpr-max`` takes ``bpreg``.
    """
    pos = _positives(x)
    if loss == "cross-entropy":
        if smoothing > 0:
            return -(_targets(x, smoothing) * torch.log(x + EPS)).sum(dim=1)
        return -torch.log(pos.squeeze(1) + EPS)
    if loss == "xe_logit":
        log_p = torch.log_softmax(x, dim=1)
        if smoothing > 0:
            return -(_targets(x, smoothing) * log_p).sum(dim=1)
        return -log_p.diagonal()
    if loss == "bpr-max":
        s = _softmax_negatives(x)
        hit = (s * torch.sigmoid(pos - x)).sum(dim=1)
        reg = (s * x.square()).sum(dim=1)
        return -torch.log(hit + EPS) + bpreg * reg
    if loss == "top1-max":
        s = _softmax_negatives(x)
        return (s * (torch.sigmoid(x - pos) + torch.sigmoid(x.square()))).sum(dim=1)
    if loss == "top1":
        n = x.shape[1]
        return ((torch.sigmoid(x - pos) + torch.sigmoid(x.square())).mean(dim=1)
                - torch.sigmoid(pos.squeeze(1).square()) / n)
    if loss == "bpr":
        return -F.logsigmoid(pos - x).sum(dim=1)
    raise ValueError(f"unknown loss {loss!r}")


def step_loss(scores: torch.Tensor, cfg: GRU4RecConfig, log_q: torch.Tensor | None = None
              ) -> torch.Tensor:
    """The loss of one mini-batch from raw (M, N) scores, for any configuration.

    Cross-entropy losses first subtract ``logq * log_q`` (log_q: (N,) log sampling weight of
    each column); then the final activation; then the loss, summed over rows / batch_size.
    """
    if cfg.logq > 0 and log_q is not None and cfg.loss in ("cross-entropy", "xe_logit"):
        scores = scores - cfg.logq * log_q
    x = activation(cfg.final_act)(scores)
    return row_losses(cfg.loss, x, bpreg=cfg.bpreg, smoothing=cfg.smoothing).sum() \
        / cfg.batch_size


def cross_entropy_loss(scores: torch.Tensor, batch_size: int,
                       log_q: torch.Tensor | None = None, logq: float = 0.0) -> torch.Tensor:
    """Softmax cross-entropy, optionally with logQ correction.

    Args:
        scores: (M, N) raw scores R.
        batch_size: the configured B that the summed loss is divided by.
        log_q: (N,) log of each column's sampling weight Q_k (support for in-batch
            columns, support**sample_alpha for sampled ones); used when ``logq`` > 0.
        logq: weight of the correction: R[:, k] -= logq * log(Q_k).
    Returns:
        scalar: sum_j -log(softmax(R_j)[j] + 1e-24) / B.
    """
    if logq > 0 and log_q is not None:
        scores = scores - logq * log_q
    if scores.shape[0] == 0:
        return scores.sum() * 0
    p_pos = torch.exp(scores.diagonal() - torch.logsumexp(scores, dim=1))  # softmax(R_j)[j]
    return -torch.log(p_pos + EPS).sum() / batch_size


def bpr_max_loss(scores: torch.Tensor, batch_size: int, bpreg: float,
                 elu_param: float) -> torch.Tensor:
    """BPR-max with score regularisation, after the ELU final activation.

    Args:
        scores: (M, N) raw scores R.
        batch_size: the configured B.
        bpreg: weight of sum_k s_jk R_jk^2.
        elu_param: ELU alpha of the final activation (0 = linear).
    Returns:
        scalar: sum_j [-log(sum_k s_jk sigmoid(r_j - R_jk) + 1e-24)
                       + bpreg sum_k s_jk R_jk^2] / B,
        with s_j the softmax of row j over its negatives only.
    """
    x = F.elu(scores, alpha=elu_param) if elu_param > 0 else scores
    return row_losses("bpr-max", x, bpreg=bpreg).sum() / batch_size


# ----------------------------------------------------------------------------- fused
# Training always back-propagates the loss, so the hand-written step (nn/step.py) uses these
# versions that compute the loss AND its gradient d loss / d R in one pass with in-place
# ops: about half the element-wise passes of autograd and no graph bookkeeping. The plain
# functions above stay as the readable reference; tests check that both agree.


def xe_value_and_grad(r: torch.Tensor, batch_size: int, log_q: torch.Tensor | None,
                       logq: float, row_weight: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy loss and d loss / d R for (M, N) scores r (see cross_entropy_loss).

    row_weight: optional (M, 1) 0/1 weights; rows with 0 add nothing to loss or gradient
    (fixed-shape steps mask their finished slots this way).
    """
    z = r - logq * log_q if (logq > 0 and log_q is not None) else r.clone()
    z.sub_(z.amax(dim=1, keepdim=True)).exp_()
    p = z.div_(z.sum(dim=1, keepdim=True))  # softmax, in place
    p_pos = p.diagonal().clone()  # (M,)
    w = (p_pos / (p_pos + EPS)).div_(batch_size).unsqueeze(1)  # (M, 1)
    row_loss = -torch.log(p_pos + EPS)
    if row_weight is not None:
        row_loss, w = row_loss * row_weight.squeeze(1), w * row_weight
    grad = p.mul_(w)  # dL/dz_jk = w_j (p_jk - [k == j])
    grad.diagonal().sub_(w.squeeze(1))
    return row_loss.sum() / batch_size, grad


def bpr_max_value_and_grad(r: torch.Tensor, batch_size: int, bpreg: float, elu_param: float,
                           mask: torch.Tensor, row_weight: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """BPR-max loss and d loss / d R for (M, N) raw scores r (see bpr_max_loss); mask (M, N)
    is 0 on each row's positive column (and on any other column to leave out), row_weight
    as in :func:`xe_value_and_grad`.

    With X = ELU(R), s the softmax over negatives, sig = sigmoid(x_pos - X),
    hit = sum s sig and reg = sum s X^2, the gradient is
        dL/dX_l = s_l [bpreg X_l (X_l + 2) - sig_l^2 / hit + (1 - bpreg reg)]  (negatives),
        dL/dx_pos = -(hit - sum s sig^2) / hit,
    (hit stands for hit + 1e-24) which needs only a few passes over the matrix.
    """
    x = F.elu(r, alpha=elu_param) if elu_param > 0 else r
    s = torch.exp(x - x.amax(dim=1, keepdim=True)).mul_(mask)  # amax: no argmax work
    s.div_(s.sum(dim=1, keepdim=True))  # softmax over the negatives
    sq = torch.sigmoid(x.diagonal().unsqueeze(1) - x)  # sigma(r_j - R_jk)
    hit = (s * sq).sum(dim=1, keepdim=True)  # (M, 1)
    sq.square_()
    d_pos = hit - (s * sq).sum(dim=1, keepdim=True)  # sum_k s sig (1 - sig)
    inv_hit = 1.0 / (hit + EPS)
    loss_rows = -torch.log(hit + EPS)
    g = sq.mul_(-inv_hit)
    const = inv_hit * hit
    if bpreg > 0:
        reg = (s * x.square()).sum(dim=1, keepdim=True)
        loss_rows = loss_rows + bpreg * reg
        const = const - bpreg * reg
        g.addcmul_(x, x + 2.0, value=bpreg)
    g.add_(const).mul_(s)
    g.diagonal().sub_((d_pos * inv_hit).squeeze(1))
    if elu_param > 0:  # chain rule through the ELU (1 where x > 0, else x + alpha), one op
        g = torch.ops.aten.elu_backward(g, elu_param, 1, 1, True, x)
    if row_weight is not None:
        loss_rows, g = loss_rows * row_weight, g.mul_(row_weight)
    return loss_rows.sum() / batch_size, g.div_(batch_size)
