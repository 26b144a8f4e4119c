"""GRU4Rec losses over the sampled score matrix (ALGORITHM §5).

R is the (M, M + n_sample) score matrix of a mini-batch: column j < M is the target of row j
(the other rows' targets are its in-batch negatives), columns >= M are the shared extra
negatives. The positive score of row j is R[j, j]. Every loss returns the SUM over rows
divided by the configured batch size B (not by M).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "bpr_max_loss",
    "cross_entropy_loss",
    "bpr_max_value_and_grad",
    "xe_value_and_grad",
    "negative_mask",
]

EPS = 1e-24


def negative_mask(m: int, n_cols: int, device: torch.device) -> torch.Tensor:
    """(m, n_cols) float mask: 1 everywhere except 0 on the positive column of each row."""
    mask = torch.ones(m, n_cols, device=device)
    mask[:, :m].fill_diagonal_(0.0)
    return mask


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
    m = scores.shape[0]
    pos = scores.diagonal()  # (M,) view of R[j, j]
    p_pos = torch.exp(pos - torch.logsumexp(scores, dim=1))  # softmax(R_j)[j]
    return -torch.log(p_pos + EPS).sum() / batch_size if m else scores.sum() * 0


def bpr_max_loss(scores: torch.Tensor, batch_size: int, bpreg: float, elu_param: float,
                 mask: torch.Tensor) -> torch.Tensor:
    """BPR-max with score regularisation, after the ELU final activation.

    Args:
        scores: (M, N) raw scores R.
        batch_size: the configured B.
        bpreg: weight of sum_k s_jk R_jk^2.
        elu_param: ELU alpha of the final activation (0 = linear).
        mask: (M, N) from ``negative_mask``: excludes each row's positive column.
    Returns:
        scalar: sum_j [-log(sum_k s_jk sigmoid(r_j - R_jk) + 1e-24)
                       + bpreg sum_k s_jk R_jk^2] / B,
        with s_j the softmax of row j over its negatives only.
    """
    if elu_param > 0:
        scores = F.elu(scores, alpha=elu_param)
    e = torch.exp(scores - scores.amax(dim=1, keepdim=True)) * mask
    s = e / e.sum(dim=1, keepdim=True)  # softmax over negatives, positive weight 0
    pos = scores.diagonal().unsqueeze(1)  # (M, 1)
    hit = (s * torch.sigmoid(pos - scores)).sum(dim=1)
    loss = -torch.log(hit + EPS)
    if bpreg > 0:
        loss = loss + bpreg * (s * scores.square()).sum(dim=1)
    return loss.sum() / batch_size


# ----------------------------------------------------------------------------- fused
# Training always back-propagates the loss, so the hand-written step (nn/step.py) uses these
# versions that compute the loss AND its gradient d loss / d R in one pass with in-place
# ops: about half the element-wise passes of autograd and no graph bookkeeping. The plain
# functions above stay as the readable reference; tests check that both agree.


def xe_value_and_grad(r: torch.Tensor, batch_size: int, log_q: torch.Tensor | None,
                       logq: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy loss and d loss / d R for (M, N) scores r (see cross_entropy_loss)."""
    z = r - logq * log_q if (logq > 0 and log_q is not None) else r.clone()
    z.sub_(z.amax(dim=1, keepdim=True)).exp_()
    p = z.div_(z.sum(dim=1, keepdim=True))  # softmax, in place
    p_pos = p.diagonal().clone()  # (M,)
    loss = -torch.log(p_pos + EPS).sum() / batch_size
    w = (p_pos / (p_pos + EPS)).div_(batch_size).unsqueeze(1)  # (M, 1)
    grad = p.mul_(w)  # dL/dz_jk = w_j (p_jk - [k == j])
    grad.diagonal().sub_(w.squeeze(1))
    return loss, grad


def bpr_max_value_and_grad(r: torch.Tensor, batch_size: int, bpreg: float, elu_param: float,
                           mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BPR-max loss and d loss / d R for (M, N) raw scores r (see bpr_max_loss).

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
    return loss_rows.sum() / batch_size, g.div_(batch_size)
