"""The arithmetic of the hand-written training step, evaluation and serving as PyTorch ops.

:class:`TorchOps` runs on any device (CPU or CUDA) and is the reference that the compiled
CPU kernels (:mod:`gru4rec.backend.compiled`) must match up to float rounding. Every method
is one piece of a GRU4Rec step that has a fused kernel on the CPU: the two common losses with
their gradient, one GRU layer forward and backward (tanh candidate), Adagrad over dense
tensors and over table rows, the log Q of the score columns, inverse-CDF sampling, rank
counting and the scoring of a few states against every item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["EPS", "GRULayerCache", "OuterRows", "RowGrads", "TorchOps", "adagrad_delta",
           "dropout_mask", "negative_mask", "sum_rows"]

EPS = 1e-6  # Adagrad's epsilon: step = -lr g / sqrt(acc + EPS) (docs/algorithm.md §6)
LOSS_EPS = 1e-24  # inside the logs of the losses (docs/algorithm.md §5)

RowGrads = tuple[torch.Tensor, torch.Tensor]  # (K,) table rows, may repeat; (K, w) gradients


@dataclass(frozen=True)
class OuterRows:
    """Gradients of score-column rows, kept factored: row ``cols[j]`` of the table gets
    ``g[:, j]^T h`` (g (M, N) d loss / d scores, h (M, C) the states that were scored)."""

    cols: torch.Tensor
    g: torch.Tensor
    h: torch.Tensor

    def formed(self) -> RowGrads:
        """The (N,) rows and their (N, C) gradients, as a plain part."""
        return self.cols, self.g.t() @ self.h


@dataclass
class GRULayerCache:
    """What one GRU layer's backward needs from its forward (all (M, .) float32)."""

    h: torch.Tensor  # (M, H) previous state
    rz: torch.Tensor  # (M, 2H) reset and update gates
    rh: torch.Tensor  # (M, H) r * h
    c: torch.Tensor  # (M, H) candidate state
    mask: torch.Tensor | None  # (M, H) dropout multiplier on the output, or None


def dropout_mask(like: torch.Tensor, p: float) -> torch.Tensor | None:
    """Inverted-dropout multiplier shaped like ``like`` (drawn from torch's global RNG, as
    F.dropout draws it), or None when p = 0."""
    if p <= 0:
        return None
    return torch.empty_like(like).bernoulli_(1 - p).div_(1 - p)


def negative_mask(m: int, n_cols: int, device: torch.device) -> torch.Tensor:
    """(m, n_cols) float mask: 1 everywhere except 0 on the positive column of each row."""
    mask = torch.ones(m, n_cols, device=device)
    mask[:, :m].fill_diagonal_(0.0)
    return mask


def sum_rows(parts: Sequence[RowGrads], width: int) -> RowGrads:
    """Distinct rows (U,) and their summed (U, width) gradients; parts narrower than the
    table cover its leading columns. Duplicates are summed in the order given."""
    rows, inv = torch.unique(torch.cat([i for i, _ in parts]), return_inverse=True)
    g0 = parts[0][1]
    summed = torch.zeros(rows.shape[0], width, device=g0.device, dtype=g0.dtype)
    start = 0
    for idx, g in parts:
        summed[:, : g.shape[1]].index_add_(0, inv[start:start + idx.shape[0]], g)
        start += idx.shape[0]
    return rows, summed


def adagrad_delta(g: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None, lr: float,
                  momentum: float) -> torch.Tensor:
    """Adagrad with momentum (docs/algorithm.md §6) on matching tensors: updates acc (and
    vel) in place and returns the change to add to the parameter; g is consumed."""
    acc.addcmul_(g, g)
    step = g.div_(acc.add(EPS).sqrt_()).mul_(-lr)
    return step if vel is None else vel.mul_(momentum).add_(step)


class TorchOps:
    """PyTorch implementations (any device); see the module docstring."""

    name = "pytorch"

    def __init__(self) -> None:
        self._masks: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    # ------------------------------------------------------------------ losses

    def cross_entropy_grad(self, r: torch.Tensor, batch_size: int, log_q: torch.Tensor | None,
                           logq: float, row_weight: torch.Tensor | None = None,
                           col_weight: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor | float, torch.Tensor]:
        """Softmax cross-entropy (with logQ when logq > 0) of (M, N) raw scores r and its
        gradient d loss / d r (r is overwritten). row_weight (M,) / col_weight (N,) 0/1:
        rows with 0 add nothing, columns with 0 leave the softmax (fixed-shape steps)."""
        if col_weight is not None:
            r.masked_fill_(col_weight.unsqueeze(0) == 0, float("-inf"))
        z = r.sub_(logq * log_q) if (logq > 0 and log_q is not None) else r
        z.sub_(z.amax(dim=1, keepdim=True)).exp_()
        p = z.div_(z.sum(dim=1, keepdim=True))  # softmax, in place
        p_pos = p.diagonal().clone()  # (M,)
        w = (p_pos / (p_pos + LOSS_EPS)).div_(batch_size).unsqueeze(1)  # (M, 1)
        row_loss = -torch.log(p_pos + LOSS_EPS)
        if row_weight is not None:
            row_loss, w = row_loss * row_weight, w * row_weight.unsqueeze(1)
        grad = p.mul_(w)  # dL/dz_jk = w_j (p_jk - [k == j])
        grad.diagonal().sub_(w.squeeze(1))
        return row_loss.sum() / batch_size, grad

    def bpr_max_grad(self, r: torch.Tensor, batch_size: int, bpreg: float, elu_param: float,
                     row_weight: torch.Tensor | None = None,
                     col_weight: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor | float, torch.Tensor]:
        """BPR-max after ELU(elu_param) (0 = linear) of (M, N) raw scores r and its gradient.

        With X = ELU(R), s the softmax over negatives, sig = sigmoid(x_pos - X),
        hit = sum s sig and reg = sum s X^2:
            dL/dX_l = s_l [bpreg X_l (X_l + 2) - sig_l^2 / hit + (1 - bpreg reg)] (negatives),
            dL/dx_pos = -(hit - sum s sig^2) / hit   (hit stands for hit + 1e-24).
        Weights as in :meth:`cross_entropy_grad`.
        """
        m, n = r.shape
        mask = self._negatives(m, n, r.device)
        if col_weight is not None:
            mask = mask * col_weight
        x = F.elu(r, alpha=elu_param) if elu_param > 0 else r
        s = torch.exp(x - x.amax(dim=1, keepdim=True)).mul_(mask)  # amax: no argmax work
        s.div_(s.sum(dim=1, keepdim=True))  # softmax over the negatives
        sq = torch.sigmoid(x.diagonal().unsqueeze(1) - x)  # sigma(r_j - R_jk)
        hit = (s * sq).sum(dim=1, keepdim=True)  # (M, 1)
        sq.square_()
        d_pos = hit - (s * sq).sum(dim=1, keepdim=True)  # sum_k s sig (1 - sig)
        inv_hit = 1.0 / (hit + LOSS_EPS)
        loss_rows = -torch.log(hit + LOSS_EPS)
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
            rw = row_weight.unsqueeze(1)
            loss_rows, g = loss_rows * rw, g.mul_(rw)
        return loss_rows.sum() / batch_size, g.div_(batch_size)

    def _negatives(self, m: int, n: int, device: torch.device) -> torch.Tensor:
        """The (m, n) negative mask, built once per shape."""
        key = (m, n, device)
        if key not in self._masks:
            self._masks[key] = negative_mask(m, n, device)
        return self._masks[key]

    # ------------------------------------------------------------------ GRU layer

    def gru_forward(self, vx: torch.Tensor, h: torch.Tensor, wrz: torch.Tensor,
                    wh: torch.Tensor, drop: float, aug: torch.Tensor | None
                    ) -> tuple[torch.Tensor, GRULayerCache]:
        """One tanh GRU layer: vx (M, 3H) input pre-activations [candidate, reset, update],
        h (M, H) previous state -> output (M, H) after dropout ``drop``, also written into
        aug[:, :H] (M, H+1) when given (the [h, 1] rows that score the output table)."""
        n = h.shape[1]
        rz = torch.sigmoid(torch.addmm(vx[:, n:], h, wrz))  # (M, 2H)
        rh = rz[:, :n] * h
        c = torch.tanh(torch.addmm(vx[:, :n], rh, wh))
        out = torch.lerp(h, c, rz[:, n:])
        mask = dropout_mask(out, drop)
        if mask is not None:
            out = out * mask
        if aug is not None:
            aug[:, :n].copy_(out)
        return out, GRULayerCache(h, rz, rh, c, mask)

    def gru_backward(self, d_out: torch.Tensor, k: GRULayerCache, wh: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Backward of :meth:`gru_forward` from d_out (M, H): the (M, 3H) pre-activation
        gradient and the gradients of Wh (H, H), Wrz (H, 2H) and the bias (3H,)."""
        n = k.h.shape[1]
        if k.mask is not None:
            d_out = d_out * k.mask
        d_cpre = (d_out * k.rz[:, n:]).mul_(1 - k.c.square())  # through tanh
        d_vx = torch.empty(d_out.shape[0], 3 * n, device=d_out.device)  # [cand, r, z]
        d_vx[:, :n] = d_cpre
        d_wh = k.rh.t() @ d_cpre
        torch.mul(d_cpre @ wh.t(), k.h, out=d_vx[:, n:2 * n])  # d r
        torch.mul(d_out, k.c - k.h, out=d_vx[:, 2 * n:])  # d z
        d_vx[:, n:].mul_(k.rz * (1 - k.rz))  # through the sigmoids
        return d_vx, d_wh, k.h.t() @ d_vx[:, n:], d_vx.sum(0)

    # ------------------------------------------------------------------ Adagrad

    def adagrad_dense(self, params: Sequence[torch.Tensor], accs: Sequence[torch.Tensor],
                      vels: Sequence[torch.Tensor] | None, grads: list[torch.Tensor],
                      lr: float, momentum: float) -> None:
        """Adagrad (+ momentum) of whole tensors; grads consumed. Multi-tensor ops: a
        handful of launches for all dense weights instead of ~8 per weight."""
        torch._foreach_addcmul_(list(accs), grads, grads)
        denom = torch._foreach_add(list(accs), EPS)
        torch._foreach_sqrt_(denom)
        torch._foreach_div_(grads, denom)
        torch._foreach_mul_(grads, -lr)
        if vels is not None:
            torch._foreach_mul_(list(vels), momentum)
            torch._foreach_add_(list(vels), grads)
            grads = list(vels)
        torch._foreach_add_(list(params), grads)

    def adagrad_rows(self, table: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None,
                     parts: Sequence[RowGrads | OuterRows], lr: float, momentum: float) -> None:
        """Adagrad on the rows of ``table`` that ``parts`` touch, after summing the
        gradients of each distinct row (docs/algorithm.md §4, §6). An :class:`OuterRows`
        part may come first; gradients are consumed."""
        plain = [p.formed() if isinstance(p, OuterRows) else p for p in parts]
        rows, summed = sum_rows(plain, table.shape[1])
        sub_acc = acc.index_select(0, rows)
        sub_vel = None if vel is None else vel.index_select(0, rows)
        delta = adagrad_delta(summed, sub_acc, sub_vel, lr, momentum)
        # index_put_ / index_add_ are the cheapest row writes on CPU; p + delta is the same
        # float addition whether done here or after a gather
        acc.index_put_((rows,), sub_acc)
        if vel is not None and sub_vel is not None:
            vel.index_put_((rows,), sub_vel)
        table.index_add_(0, rows, delta)

    # ------------------------------------------------------------------ sampling

    def log_q_columns(self, log_support: torch.Tensor, cols: torch.Tensor, m: int,
                      alpha: float, out: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) log Q of score columns cols (N,): log support for the first m (in-batch)
        columns, alpha * log support for the sampled ones. ``out`` may receive the result."""
        log_q = log_support[cols]
        return torch.cat([log_q[:m], alpha * log_q[m:]])

    def sample_cdf(self, cdf: torch.Tensor, guide: torch.Tensor, u: torch.Tensor
                   ) -> torch.Tensor:
        """Inverse-CDF draws: for float64 cdf (n,) and uniforms u (K,), the (K,) int64
        indices searchsorted(cdf, u, right=True) clamped to n - 1. guide (G,) int64 =
        searchsorted(cdf, arange(G) / G, right=True) speeds up the compiled version."""
        return torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[0] - 1)

    # ------------------------------------------------------------------ evaluation, serving

    def count_vs_target(self, scores: torch.Tensor, target_scores: torch.Tensor,
                        greater: torch.Tensor, equal: torch.Tensor) -> None:
        """greater += #{scores > t} and equal += #{scores == t} per row; scores (M, K),
        target_scores (M, 1), counts (M,) int64."""
        greater += (scores > target_scores).sum(dim=1)
        equal += (scores == target_scores).sum(dim=1)

    def scorer(self, weights: torch.Tensor, bias: torch.Tensor
               ) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function (M, H) states -> (M, n_items) scores h . W[i] + b[i] for weights
        (n_items, H) and bias (n_items,), for a few rows at a time. BLAS uses a contiguous
        (H, n_items) copy (~1.7x faster than the strided view of the table)."""
        wt, b = weights.t().contiguous(), bias.contiguous()
        return lambda h: torch.addmm(b, h, wt)
