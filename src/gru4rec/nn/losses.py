"""GRU4Rec losses over the sampled score matrix (docs/algorithm.md §5).

R is the (M, M + n_sample) score matrix of a mini-batch: column j < M is the target of row j
(the other rows' targets are its in-batch negatives), columns >= M are the shared extra
negatives. The positive score of row j is R[j, j]. Every loss returns the SUM over rows
divided by the configured batch size B (not by M).

:func:`step_loss` is the general form used by the autograd training step: the logQ shift,
the final activation, then any of the six losses. :func:`cross_entropy_loss` and
:func:`bpr_max_loss` are its two common cases, written for reading; the hand-written step
computes those two with their gradient in one pass on its backend
(:meth:`gru4rec.backend.TorchOps.cross_entropy_grad`, ``bpr_max_grad``), and tests require
both to agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gru4rec.config import GRU4RecConfig
from gru4rec.nn.activations import activation

__all__ = [
    "bpr_max_loss",
    "cross_entropy_loss",
    "row_losses",
    "step_loss",
]

EPS = 1e-24


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
    """Per-row losses (M,) of the activated (M, N) score matrix x (docs/algorithm.md §5).

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
