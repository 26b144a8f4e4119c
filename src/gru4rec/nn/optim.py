"""Adagrad with momentum, row-sparse for item tables (ALGORITHM §6).

For every parameter p with gradient g:
    acc += g^2;  step = -lr * g / sqrt(acc + 1e-6);  v = m * v + step;  p += v  (m > 0)
                                                                    else p += step
For item tables only the rows of the mini-batch are touched: their gradients are summed per
distinct row first, then accumulator, velocity and weights of those rows are updated.
"""

from __future__ import annotations

import torch

__all__ = ["SparseAdagrad", "sum_duplicate_rows"]

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
    """

    def __init__(self, params: dict[str, torch.Tensor], learning_rate: float,
                 momentum: float) -> None:
        self.params = params
        self.lr = learning_rate
        self.momentum = momentum
        self.acc = {n: torch.zeros_like(p) for n, p in params.items()}
        self.vel = {n: torch.zeros_like(p) for n, p in params.items()} if momentum > 0 else {}

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
