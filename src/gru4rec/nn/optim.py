"""The optimisers of GRU4Rec, row-sparse for item tables (ALGORITHM §6).

For every parameter p with gradient g (``eps`` = 1e-6, ``lr`` the learning rate):
    adagrad   acc += g^2;                        step = -lr g / sqrt(acc + eps)
    rmsprop   acc = d acc + (1 - d) g^2;         step = -lr g / sqrt(acc + eps)
    adam      m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t += 1;
              step = -lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    adadelta  acc = d acc + (1 - d) g^2;  u = g sqrt(acc_u + eps) / sqrt(acc + eps);
              acc_u = d acc_u + (1 - d) u^2;     step = -lr u
    sgd       step = -lr g                       (the original's adapt=None)
then, with momentum m > 0: v = m v + step; p += v; else p += step.
(d, b1, b2 are the ``adapt_params``.) :meth:`SparseOptimizer.step` first adds ``lmbd * p``
to every gradient (L2) and then scales all gradients of the step together so that their
global L2 norm is at most ``grad_cap``.

For item tables only the rows of the mini-batch are touched: their gradients are summed per
distinct row first, then the state and weights of those rows are updated (Adam counts t per
row: a row's bias correction follows its own number of updates). On the CPU, when the fused
kernels of :mod:`gru4rec.native` are available, Adagrad runs as one pass per table.
"""

from __future__ import annotations

import torch

from gru4rec.config import ADAPTS, GRU4RecConfig
from gru4rec.native import Kernels

__all__ = ["SparseOptimizer", "sum_duplicate_rows"]

EPS = 1e-6
RowGrads = list[tuple[torch.Tensor, torch.Tensor]]
_STATE = {"adagrad": ("acc",), "rmsprop": ("acc",), "adam": ("acc", "acc2", "count"),
          "adadelta": ("acc", "acc2"), "sgd": ()}


def sum_duplicate_rows(rows: torch.Tensor,
                       grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K,) row indices with repeats and (K, C) gradients -> (U,) distinct rows, (U, C) sums."""
    uniq, inv = torch.unique(rows, return_inverse=True)
    summed = torch.zeros(uniq.shape[0], grads.shape[1], dtype=grads.dtype, device=grads.device)
    return uniq, summed.index_add_(0, inv, grads)


class SparseOptimizer:
    """One of the original's optimisers, with momentum, over dense tensors and row-sparse
    item tables.

    Args:
        params: name -> tensor (updated in place). Item tables are updated with
            :meth:`step_rows` / :meth:`step_row_grads`, the others with
            :meth:`step_dense_all`; :meth:`step` does both for one mini-batch.
        learning_rate, momentum: as in the config.
        native: the compiled CPU kernels to use for Adagrad (all tensors must then be
            contiguous CPU float32), or None for the PyTorch implementation.
        adapt, adapt_params, lmbd, grad_cap: as in the config (adapt_params empty = the
            defaults of :data:`gru4rec.config.ADAPTS`).
    """

    def __init__(self, params: dict[str, torch.Tensor], learning_rate: float,
                 momentum: float, native: Kernels | None = None, *, adapt: str = "adagrad",
                 adapt_params: tuple[float, ...] = (), lmbd: float = 0.0,
                 grad_cap: float = 0.0) -> None:
        self.params = params
        self.lr = learning_rate
        self.momentum = momentum
        self.adapt = adapt
        self.decay = tuple(adapt_params) or ADAPTS[adapt]
        self.lmbd, self.grad_cap = lmbd, grad_cap
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        for name, p in params.items():
            st = {k: torch.zeros_like(p) for k in _STATE[adapt] if k != "count"}
            if "count" in _STATE[adapt]:  # Adam's t: per row of a 2-d table, else one
                st["count"] = torch.zeros(p.shape[0] if p.dim() == 2 else 1,
                                          dtype=p.dtype, device=p.device)
            if momentum > 0:
                st["vel"] = torch.zeros_like(p)
            self.state[name] = st
        self.native = native if adapt == "adagrad" else None
        self._scratch: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._work = torch.empty(0, dtype=torch.int64)  # step_outer_rows' kernel scratch

    @classmethod
    def from_config(cls, params: dict[str, torch.Tensor], cfg: GRU4RecConfig,
                    native: Kernels | None = None) -> SparseOptimizer:
        """The optimiser a config asks for."""
        return cls(params, cfg.learning_rate, cfg.momentum, native, adapt=cfg.adapt,
                   adapt_params=cfg.adapt_params, lmbd=cfg.lmbd, grad_cap=cfg.grad_cap)

    @property
    def acc(self) -> dict[str, torch.Tensor]:
        """The first accumulator of every parameter (Adagrad: the sum of squared grads)."""
        return {n: st["acc"] for n, st in self.state.items() if "acc" in st}

    @property
    def vel(self) -> dict[str, torch.Tensor]:
        """The momentum velocity of every parameter (empty without momentum)."""
        return {n: st["vel"] for n, st in self.state.items() if "vel" in st}

    # ---------------------------------------------------------------- whole mini-batch

    def step(self, dense: dict[str, torch.Tensor],
             rows: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Update from one mini-batch's gradients: ``dense`` name -> full gradient, ``rows``
        name -> (distinct rows (U,), their summed gradients (U, C)). Adds ``lmbd * p``,
        clips to ``grad_cap``, then updates. Gradients are consumed."""
        if self.lmbd > 0:
            for name, g in dense.items():
                g.add_(self.params[name], alpha=self.lmbd)
            for name, (idx, g) in rows.items():
                g.add_(self.params[name].index_select(0, idx), alpha=self.lmbd)
        if self.grad_cap > 0:
            grads = [*dense.values(), *(g for _, g in rows.values())]
            norm = torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads]))
            scale = (self.grad_cap / norm).clamp(max=1.0)  # no host sync: a tensor scale
            for g in grads:
                g.mul_(scale)
        for name, (idx, g) in rows.items():
            self.step_rows(name, idx, g)
        if dense:
            self.step_dense_all(list(dense), list(dense.values()))

    # ---------------------------------------------------------------- primitives

    def _delta(self, g: torch.Tensor, st: dict[str, torch.Tensor],
               count: torch.Tensor | None) -> torch.Tensor:
        """Update the state tensors (rows or whole) in place; return the change to add to
        the parameter. g is consumed. count: Adam's t of each row (already incremented)."""
        a = self.adapt
        if a == "adagrad":
            st["acc"].addcmul_(g, g)
            step = g.div_(st["acc"].add(EPS).sqrt_())
        elif a == "rmsprop":
            d = self.decay[0]
            st["acc"].mul_(d).addcmul_(g, g, value=1 - d)
            step = g.div_(st["acc"].add(EPS).sqrt_())
        elif a == "adam":
            b1, b2 = self.decay
            st["acc"].mul_(b1).add_(g, alpha=1 - b1)
            st["acc2"].mul_(b2).addcmul_(g, g, value=1 - b2)
            assert count is not None
            m_hat = st["acc"] / (1 - b1 ** count)
            v_hat = st["acc2"] / (1 - b2 ** count)
            step = m_hat.div_(v_hat.sqrt_().add_(EPS))
        elif a == "adadelta":
            d = self.decay[0]
            st["acc"].mul_(d).addcmul_(g, g, value=1 - d)
            step = g.mul_(st["acc2"].add(EPS).sqrt_()).div_(st["acc"].add(EPS).sqrt_())
            st["acc2"].mul_(d).addcmul_(step, step, value=1 - d)
        else:  # sgd
            step = g
        step = step.mul_(-self.lr)
        if "vel" not in st:
            return step
        return st["vel"].mul_(self.momentum).add_(step)

    def step_dense(self, name: str, grad: torch.Tensor) -> None:
        """Full update of a dense parameter with its gradient (consumed)."""
        self.step_dense_all([name], [grad])

    def step_dense_all(self, names: list[str], grads: list[torch.Tensor]) -> None:
        """Full update of several dense parameters (grads consumed; no lmbd/grad_cap)."""
        if not names:
            return
        if self.native is not None:  # one fused pass per tensor instead of 8 foreach ops
            for name, g in zip(names, grads, strict=True):
                st = self.state[name]
                self.native.adagrad_dense(self.params[name], st["acc"], st.get("vel"),
                                          g.contiguous(), self.lr, self.momentum, EPS)
            return
        if self.adapt == "adagrad":
            self._adagrad_foreach(names, grads)
            return
        for name, g in zip(names, grads, strict=True):
            st, p = self.state[name], self.params[name]
            count = None
            if "count" in st:
                count = st["count"].add_(1)
                count = count.unsqueeze(1) if p.dim() == 2 else count
            p.add_(self._delta(g, st, count))

    def _adagrad_foreach(self, names: list[str], grads: list[torch.Tensor]) -> None:
        """Adagrad of :meth:`_delta` as multi-tensor ops: a handful of kernel launches for
        all dense weights instead of ~8 per weight."""
        acc = [self.state[n]["acc"] for n in names]
        torch._foreach_addcmul_(acc, grads, grads)
        denom = torch._foreach_add(acc, EPS)
        torch._foreach_sqrt_(denom)
        torch._foreach_div_(grads, denom)
        torch._foreach_mul_(grads, -self.lr)
        if self.momentum > 0:
            vel = [self.state[n]["vel"] for n in names]
            torch._foreach_mul_(vel, self.momentum)
            torch._foreach_add_(vel, grads)
            grads = vel
        torch._foreach_add_([self.params[n] for n in names], grads)

    def step_rows(self, name: str, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update the DISTINCT ``rows`` (U,) of table ``name`` with their summed (U, C) grads
        (consumed; no lmbd/grad_cap)."""
        st = self.state[name]
        sub = {k: v.index_select(0, rows) for k, v in st.items() if k != "count"}
        count = None
        if "count" in st:
            st["count"].index_add_(0, rows, torch.ones_like(rows, dtype=st["count"].dtype))
            count = st["count"].index_select(0, rows).unsqueeze(1)
        delta = self._delta(grad, sub, count)
        # index_put_ / index_add_ are the cheapest row writes on CPU; p + delta is the same
        # float addition whether done here or after a gather
        for k, v in sub.items():
            st[k].index_put_((rows,), v)
        self.params[name].index_add_(0, rows, delta)

    def step_row_grads(self, name: str, parts: RowGrads) -> None:
        """Update table ``name`` from gradient rows that may repeat a table row.

        ``parts`` is a list of (idx (K,), grads (K, w)) with w <= the table width (narrower
        gradients cover the leading columns). The gradients of each distinct row are summed,
        in the order given, before its single update (ALGORITHM §4, §6).
        """
        if self.native is None:
            self.step_rows(name, *self.sum_row_grads(name, parts))
            return
        slot, buf, uniq = self._row_scratch(name, sum(i.shape[0] for i, _ in parts))
        u = 0
        for idx, g in parts:
            g = g if g.stride(1) == 1 else g.contiguous()  # rows may be strided, values not
            u = self.native.rows_accumulate(slot, buf, uniq, u, idx.contiguous(), g)
        st = self.state[name]
        self.native.rows_apply(self.params[name], st["acc"], st.get("vel"), slot, buf, uniq,
                               u, self.lr, self.momentum, EPS)

    def step_outer_rows(self, name: str, cols: torch.Tensor, g: torch.Tensor,
                        h: torch.Tensor, extra: RowGrads) -> None:
        """Update table ``name`` (R, C) where column j of g (M, N) scores row cols[j]
        against h (M, C): that row's gradient is g[:, j]^T h. ``extra`` adds gradient rows as
        in :meth:`step_row_grads` (after the columns). Same result as
        ``step_row_grads(name, [(cols, g.t() @ h), *extra])`` up to float rounding; the
        compiled kernel never forms the (N, C) product."""
        if self.native is None:
            self.step_row_grads(name, [(cols, g.t() @ h), *extra])
            return
        idx2, g2 = extra[0] if extra else (None, None)
        if len(extra) > 1:
            raise ValueError("step_outer_rows takes at most one extra part")
        total = cols.shape[0] + (0 if idx2 is None else idx2.shape[0])
        slot, _, _ = self._row_scratch(name, total)
        if self._work.shape[0] < 3 * total + 1:
            self._work = torch.empty(3 * total + 1, dtype=torch.int64)
        st = self.state[name]
        if g2 is not None and g2.stride(1) != 1:
            g2 = g2.contiguous()
        self.native.outer_rows_update(
            self.params[name], st["acc"], st.get("vel"), slot, cols.contiguous(),
            g.contiguous(), h.contiguous(), None if idx2 is None else idx2.contiguous(), g2,
            self._work, self.lr, self.momentum, EPS)

    def step_rows_static(self, name: str, idx: torch.Tensor, grads: torch.Tensor,
                         weight: torch.Tensor) -> None:
        """Row-sparse update with shapes that do not depend on the data (CUDA graphs).

        idx (K,) table rows, possibly repeated; grads (K, w) with w <= the table width;
        weight (K,) 1 for real occurrences, 0 for padding ones (a row only occurring as
        padding is left exactly as it is, momentum included). Same result as
        :meth:`step_row_grads` on the real occurrences, up to float rounding. Sorting stands
        in for ``unique`` (whose output size is data-dependent): segment sums land in the
        first slots, and every slot's update is weighted by whether it holds a real row.
        """
        table, st = self.params[name], self.state[name]
        k, c = idx.shape[0], table.shape[1]
        sorted_idx, perm = torch.sort(idx)
        first = torch.ones_like(sorted_idx, dtype=torch.bool)
        first[1:] = sorted_idx[1:] != sorted_idx[:-1]
        seg = torch.cumsum(first, 0) - 1  # (K,) segment of each sorted occurrence
        summed = torch.zeros(k, c, dtype=table.dtype, device=table.device)
        summed[:, : grads.shape[1]].index_add_(0, seg, grads[perm])
        real = torch.zeros(k, dtype=table.dtype, device=table.device).index_add_(
            0, seg, weight[perm].to(table.dtype)).gt_(0).to(table.dtype)
        rows = torch.zeros_like(idx).index_put_((seg,), sorted_idx)  # unused slots: row 0
        old = {n: v.index_select(0, rows) for n, v in st.items() if n != "count"}
        new = {n: v.clone() for n, v in old.items()}
        count = None
        if "count" in st:
            st["count"].index_add_(0, rows, real)
            count = st["count"].index_select(0, rows).unsqueeze(1)
        delta = self._delta(summed, new, count) * real.unsqueeze(1)
        for n, v in new.items():  # each real row sits in exactly one slot: one add per row
            st[n].index_add_(0, rows, (v - old[n]) * real.unsqueeze(1))
        table.index_add_(0, rows, delta)

    def sum_row_grads(self, name: str,
                      parts: RowGrads) -> tuple[torch.Tensor, torch.Tensor]:
        """(distinct rows (U,), summed gradients (U, C)) of ``parts`` for table ``name``."""
        c = self.params[name].shape[1]
        rows, inv = torch.unique(torch.cat([i for i, _ in parts]), return_inverse=True)
        summed = torch.zeros(rows.shape[0], c, device=rows.device,
                             dtype=self.params[name].dtype)
        start = 0
        for idx, g in parts:
            summed[:, : g.shape[1]].index_add_(0, inv[start:start + idx.shape[0]], g)
            start += idx.shape[0]
        return rows, summed

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
