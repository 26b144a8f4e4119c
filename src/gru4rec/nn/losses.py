"""GRU4Rec losses over the sampled score matrix (ALGORITHM §5).

R is the (M, M + n_sample) score matrix of a mini-batch: column j < M is the target of row j
(the other rows' targets are its in-batch negatives), columns >= M are the shared extra
negatives. The positive score of row j is R[j, j]. Every loss returns the SUM over rows
divided by the configured batch size B (not by M).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bpr_max_loss", "cross_entropy_loss", "negative_mask"]

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
    e = torch.exp(scores - scores.max(dim=1, keepdim=True).values) * mask
    s = e / e.sum(dim=1, keepdim=True)  # softmax over negatives, positive weight 0
    pos = scores.diagonal().unsqueeze(1)  # (M, 1)
    hit = (s * torch.sigmoid(pos - scores)).sum(dim=1)
    loss = -torch.log(hit + EPS)
    if bpreg > 0:
        loss = loss + bpreg * (s * scores.square()).sum(dim=1)
    return loss.sum() / batch_size
