"""Adagrad with momentum, row-sparse for item tables (ALGORITHM §6).

For every parameter p with gradient g:
    acc += g^2;  step = -lr * g / sqrt(acc + 1e-6);  v = m * v + step;  p += v  (m > 0)
                                                                    else p += step
For item tables only the rows of the mini-batch are touched: their gradients are summed per
distinct row first, then accumulator, velocity and weights of those rows are updated.
On the CPU, when the fused kernels of :mod:`gru4rec.native` are available, the same
arithmetic runs as one pass per table (no sort for the distinct rows, no temporaries).
"""

from __future__ import annotations

import torch

from gru4rec.native import Kernels

__all__ = ["SparseAdagrad", "sum_duplicate_rows"]

RowGrads = list[tuple[torch.Tensor, torch.Tensor]]

EPS = 1e-6


def sum_duplicate_rows(rows: torch.Tensor,
                       grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K,) row indices with repeats and (K, C) gradients -> (U,) distinct rows, (U, C) sums."""
    uniq, inv = torch.unique(rows, return_inverse=True)
    summed = torch.zeros(uniq.shape[0], grads.shape[1], dtype=grads.dtype, device=grads.device)
    return uniq, summed.index_add_(0, inv, grads)


class SparseAdagrad:
    """Adagrad + momentum over dense tensors and row-sparse item tables.

    Args:
        params: name -> tensor (updated in place); item tables are updated with
            :meth:`step_rows`, the others with :meth:`step_dense_all`.
        learning_rate, momentum: as in the config.
        native: the compiled CPU kernels to use (all tensors must then be contiguous CPU
            float32), or None for the PyTorch implementation.
    """

    def __init__(self, params: dict[str, torch.Tensor], learning_rate: float,
                 momentum: float, native: Kernels | None = None) -> None:
        self.params = params
        self.lr = learning_rate
        self.momentum = momentum
        self.acc = {n: torch.zeros_like(p) for n, p in params.items()}
        self.vel = {n: torch.zeros_like(p) for n, p in params.items()} if momentum > 0 else {}
        self.native = native
        self._scratch: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _delta(self, g: torch.Tensor, acc: torch.Tensor,
               vel: torch.Tensor | None) -> torch.Tensor:
        """Update acc (and vel) in place; return the change to add to the parameter."""
        acc.addcmul_(g, g)
        step = g.div_(acc.add(EPS).sqrt_()).mul_(-self.lr)  # g is consumed: saves a buffer
        if vel is None:
            return step
        return vel.mul_(self.momentum).add_(step)

    def step_dense(self, name: str, grad: torch.Tensor) -> None:
        """Full update of a dense parameter with its gradient (consumed)."""
        self.step_dense_all([name], [grad])

    def step_dense_all(self, names: list[str], grads: list[torch.Tensor]) -> None:
        """Full update of several dense parameters (grads consumed).

        The arithmetic of :meth:`_delta`, as multi-tensor ops: a handful of kernel launches
        for all dense weights instead of ~8 per weight.
        """
        if not names:
            return
        if self.native is not None:  # one fused pass per tensor instead of 8 foreach ops
            for name, g in zip(names, grads, strict=True):
                self.native.adagrad_dense(self.params[name], self.acc[name],
                                          self.vel.get(name), g.contiguous(), self.lr,
                                          self.momentum, EPS)
            return
        acc = [self.acc[n] for n in names]
        torch._foreach_addcmul_(acc, grads, grads)
        denom = torch._foreach_add(acc, EPS)
        torch._foreach_sqrt_(denom)
        torch._foreach_div_(grads, denom)
        torch._foreach_mul_(grads, -self.lr)
        if self.momentum > 0:
            vel = [self.vel[n] for n in names]
            torch._foreach_mul_(vel, self.momentum)
            torch._foreach_add_(vel, grads)
            grads = vel
        torch._foreach_add_([self.params[n] for n in names], grads)

    def step_rows(self, name: str, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update the DISTINCT ``rows`` (U,) of table ``name`` with their summed (U, C) grads
        (consumed)."""
        acc = self.acc[name].index_select(0, rows)
        vel = self.vel[name].index_select(0, rows) if self.momentum > 0 else None
        delta = self._delta(grad, acc, vel)
        # index_put_ / index_add_ are the cheapest row writes on CPU; p + delta is the same
        # float addition whether done here or after a gather
        self.acc[name].index_put_((rows,), acc)
        if vel is not None:
            self.vel[name].index_put_((rows,), vel)
        self.params[name].index_add_(0, rows, delta)

    def step_row_grads(self, name: str, parts: RowGrads) -> None:
        """Update table ``name`` from gradient rows that may repeat a table row.

        ``parts`` is a list of (idx (K,), grads (K, w)) with w <= the table width (narrower
        gradients cover the leading columns). The gradients of each distinct row are summed,
        in the order given, before its single update (ALGORITHM §4, §6).
        """
        if self.native is None:
            c = self.params[name].shape[1]
            rows, inv = torch.unique(torch.cat([i for i, _ in parts]), return_inverse=True)
            summed = torch.zeros(rows.shape[0], c, device=rows.device)
            start = 0
            for idx, g in parts:
                summed[:, : g.shape[1]].index_add_(0, inv[start:start + idx.shape[0]], g)
                start += idx.shape[0]
            self.step_rows(name, rows, summed)
            return
        slot, buf, uniq = self._row_scratch(name, sum(i.shape[0] for i, _ in parts))
        u = 0
        for idx, g in parts:
            g = g if g.stride(1) == 1 else g.contiguous()  # rows may be strided, values not
            u = self.native.rows_accumulate(slot, buf, uniq, u, idx.contiguous(), g)
        self.native.rows_apply(self.params[name], self.acc[name], self.vel.get(name), slot,
                               buf, uniq, u, self.lr, self.momentum, EPS)

    def _row_scratch(self, name: str,
                     k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(n_rows,) int32 slot map (all -1 between steps), (>= k, C) buffer, (>= k,) rows."""
        table = self.params[name]
        have = self._scratch.get(name)
        if have is None or have[0].shape[0] != table.shape[0] or have[1].shape != (
                max(k, have[1].shape[0]), table.shape[1]):
            size = k if have is None else max(k, have[1].shape[0])
            self._scratch[name] = (torch.full((table.shape[0],), -1, dtype=torch.int32),
                                   torch.empty(size, table.shape[1]),
                                   torch.empty(size, dtype=torch.int64))
        return self._scratch[name]
