"""The optimisers of GRU4Rec, row-sparse for item tables (docs/algorithm.md §6).

For every parameter p with gradient g (``eps`` = 1e-6, ``lr`` the learning rate):
    adagrad   acc += g^2;                        step = -lr g / sqrt(acc + eps)
              (acc starts at ``adagrad_init``, 0 by default)
    rmsprop   acc = d acc + (1 - d) g^2;         step = -lr g / sqrt(acc + eps)
    adam      m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t += 1;
              step = -lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    adadelta  acc = d acc + (1 - d) g^2;  u = g sqrt(acc_u + eps) / sqrt(acc + eps);
              acc_u = d acc_u + (1 - d) u^2;     step = -lr u
    sgd       step = -lr g                       (the original's adapt=None)
then, with momentum m > 0: v = m v + step; p += v; else p += step.
(d, b1, b2 are the ``adapt_params``.) :meth:`SparseOptimizer.regularize` adds ``lmbd * p``
to every gradient (L2) and then scales all gradients of the step together so that their
global L2 norm is at most ``grad_cap``.

Two entry points update parameters: :meth:`~SparseOptimizer.update_dense` (whole tensors)
and :meth:`~SparseOptimizer.update_rows` (item tables: only the rows of the mini-batch; the
gradients of each distinct row are summed first, and Adam counts t per row). Adagrad, the
default, runs on the backend (compiled kernels on the CPU); with ``weights`` the row update
has shapes that do not depend on the data (CUDA graphs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gru4rec.backend import TorchOps
from gru4rec.backend.torch_ops import EPS, OuterRows, RowGrads, adagrad_delta, sum_rows
from gru4rec.config import ADAPTS, GRU4RecConfig

__all__ = ["OuterRows", "RowGrads", "SparseOptimizer", "state_shapes"]

_STATE = {"adagrad": ("acc",), "rmsprop": ("acc",), "adam": ("acc", "acc2", "count"),
          "adadelta": ("acc", "acc2"), "sgd": ()}


def state_shapes(shape: tuple[int, ...], adapt: str, momentum: float) -> dict[str,
                                                                        tuple[int, ...]]:
    """State name -> shape the optimiser keeps for a parameter of ``shape``."""
    out = {k: shape for k in _STATE[adapt] if k != "count"}
    if "count" in _STATE[adapt]:  # Adam's t: per row of a 2-d table, else one
        out["count"] = (shape[0] if len(shape) == 2 else 1,)
    if momentum > 0:
        out["vel"] = shape
    return out


class SparseOptimizer:
    """One of the original's optimisers, with momentum, over dense tensors and row-sparse
    item tables.

    Args:
        params: name -> tensor (updated in place).
        learning_rate, momentum: as in the config.
        backend: where Adagrad runs (:func:`gru4rec.backend.select_backend`); default
            PyTorch ops.
        adapt, adapt_params, lmbd, grad_cap, adagrad_init: as in the config (adapt_params
            empty = the defaults of :data:`gru4rec.config.ADAPTS`; adagrad_init: the
            starting value of Adagrad's accumulator).
    """

    def __init__(self, params: dict[str, torch.Tensor], learning_rate: float,
                 momentum: float, backend: TorchOps | None = None, *, adapt: str = "adagrad",
                 adapt_params: tuple[float, ...] = (), lmbd: float = 0.0,
                 grad_cap: float = 0.0, adagrad_init: float = 0.0) -> None:
        self.params = params
        self.lr = learning_rate
        self.momentum = momentum
        self.backend = backend if backend is not None else TorchOps()
        self.adapt = adapt
        self.decay = tuple(adapt_params) or ADAPTS[adapt]
        self.lmbd, self.grad_cap = lmbd, grad_cap
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        for name, p in params.items():
            st = {k: torch.zeros(shape, dtype=p.dtype, device=p.device)
                  for k, shape in state_shapes(tuple(p.shape), adapt, momentum).items()}
            if adapt == "adagrad" and adagrad_init > 0:  # every row starts from it
                st["acc"].fill_(adagrad_init)
            self.state[name] = st

    @classmethod
    def from_config(cls, params: dict[str, torch.Tensor], cfg: GRU4RecConfig,
                    backend: TorchOps | None = None) -> SparseOptimizer:
        """The optimiser a config asks for."""
        return cls(params, cfg.learning_rate, cfg.momentum, backend, adapt=cfg.adapt,
                   adapt_params=cfg.adapt_params, lmbd=cfg.lmbd, grad_cap=cfg.grad_cap,
                   adagrad_init=cfg.adagrad_init)

    @property
    def acc(self) -> dict[str, torch.Tensor]:
        """The first accumulator of every parameter (Adagrad: the sum of squared grads)."""
        return {n: st["acc"] for n, st in self.state.items() if "acc" in st}

    @property
    def vel(self) -> dict[str, torch.Tensor]:
        """The momentum velocity of every parameter (empty without momentum)."""
        return {n: st["vel"] for n, st in self.state.items() if "vel" in st}

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        """The optimiser state: parameter name -> {state name -> tensor} (the live tensors;
        acc, acc2, count, vel as the optimiser has them)."""
        return {n: dict(st) for n, st in self.state.items()}

    def load_state_dict(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        """Continue from ``state`` (from :meth:`state_dict`, possibly of a smaller item
        count): each tensor is copied into the leading rows of its counterpart, so the rows
        of items added since keep their fresh state (Adagrad: ``adagrad_init``). State names
        only one side has (momentum switched on or off) keep or lose their values.

        Raises:
            ValueError: a parameter name differs, or a tensor has more rows or other
                trailing dimensions than its counterpart.
        """
        if set(state) != set(self.state):
            raise ValueError(f"optimiser state for {sorted(state)}, parameters "
                             f"{sorted(self.state)}")
        for name, old in state.items():
            for key, t in old.items():
                cur = self.state[name].get(key)
                if cur is None:
                    continue
                if t.dim() != cur.dim() or t.shape[1:] != cur.shape[1:] or \
                        t.shape[0] > cur.shape[0]:
                    raise ValueError(f"optimiser state {name}.{key} has shape "
                                     f"{tuple(t.shape)}, the parameter's {tuple(cur.shape)}")
                cur[: t.shape[0]].copy_(t)

    def regularize(self, dense: dict[str, torch.Tensor], rows: dict[str, RowGrads]) -> None:
        """Add ``lmbd * p`` to the gradients, then clip them together to ``grad_cap``, in
        place: ``dense`` name -> full gradient, ``rows`` name -> (distinct rows (U,), their
        summed gradients (U, C))."""
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

    # ---------------------------------------------------------------- the two updates

    def update_dense(self, grads: dict[str, torch.Tensor]) -> None:
        """Update whole parameters, name -> gradient (consumed; no lmbd/grad_cap)."""
        if not grads:
            return
        names = list(grads)
        if self.adapt == "adagrad":
            vels = [self.state[n]["vel"] for n in names] if self.momentum > 0 else None
            self.backend.adagrad_dense([self.params[n] for n in names],
                                       [self.state[n]["acc"] for n in names], vels,
                                       list(grads.values()), self.lr, self.momentum)
            return
        for name, g in grads.items():
            st, p = self.state[name], self.params[name]
            count = None
            if "count" in st:
                count = st["count"].add_(1)
                count = count.unsqueeze(1) if p.dim() == 2 else count
            p.add_(self._delta(g, st, count))

    def update_rows(self, name: str, parts: Sequence[RowGrads | OuterRows],
                    weights: torch.Tensor | None = None) -> None:
        """Update the rows of item table ``name`` that ``parts`` touch.

        Each part is (idx (K,), grads (K, w)) with w <= the table width (narrower gradients
        cover the leading columns), or an :class:`OuterRows` (first part only). Rows may
        repeat: the gradients of each distinct row are summed, in the order given, before
        its single update (docs/algorithm.md §4, §6). ``weights`` (sum of K,) 1 for real
        occurrences and 0 for padding ones switches to fixed shapes (a row occurring only as
        padding is left exactly as it is, momentum included). Gradients are consumed.
        """
        st = self.state[name]
        if self.adapt == "adagrad" and weights is None:
            self.backend.adagrad_rows(self.params[name], st["acc"], st.get("vel"), parts,
                                      self.lr, self.momentum)
            return
        plain = [p.formed() if isinstance(p, OuterRows) else p for p in parts]
        if weights is None:
            self._update_distinct(name, *sum_rows(plain, self.params[name].shape[1]))
        else:
            self._update_static(name, plain, weights)

    # ---------------------------------------------------------------- internals

    def _delta(self, g: torch.Tensor, st: dict[str, torch.Tensor],
               count: torch.Tensor | None) -> torch.Tensor:
        """Update the state tensors (rows or whole) in place; return the change to add to
        the parameter. g is consumed. count: Adam's t of each row (already incremented)."""
        a = self.adapt
        if a == "adagrad":
            return adagrad_delta(g, st["acc"], st.get("vel"), self.lr, self.momentum)
        if a == "rmsprop":
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

    def _update_distinct(self, name: str, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update the DISTINCT ``rows`` (U,) of table ``name`` with their summed (U, C)
        grads (consumed)."""
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

    def _update_static(self, name: str, parts: list[RowGrads], weight: torch.Tensor) -> None:
        """:meth:`update_rows` with ``weights``: sorting stands in for ``unique`` (whose
        output size is data-dependent): segment sums land in the first slots, and every
        slot's update is weighted by whether it holds a real row."""
        table, st = self.params[name], self.state[name]
        c = table.shape[1]
        idx = torch.cat([i for i, _ in parts])
        grads = torch.cat([torch.nn.functional.pad(g, (0, c - g.shape[1])) for _, g in parts])
        sorted_idx, perm = torch.sort(idx)
        first = torch.ones_like(sorted_idx, dtype=torch.bool)
        first[1:] = sorted_idx[1:] != sorted_idx[:-1]
        seg = torch.cumsum(first, 0) - 1  # (K,) segment of each sorted occurrence
        summed = torch.zeros(idx.shape[0], c, dtype=table.dtype, device=table.device)
        summed.index_add_(0, seg, grads[perm])
        real = torch.zeros(idx.shape[0], dtype=table.dtype, device=table.device).index_add_(
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
