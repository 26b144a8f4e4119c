"""The same arithmetic as :class:`~gru4rec.backend.torch_ops.TorchOps`, on the compiled
CPU kernels (:mod:`gru4rec.kernels`) where they apply.

The step is tiny (B=32, 100 units: ~40 MFLOP), so PyTorch's per-op dispatch and its many
element-wise passes cost more than the arithmetic; each kernel here does one pass for what
takes ~5-15 tensor ops. Calls the kernels do not cover (row or column weights of the
fixed-shape step, strided blocks) run the PyTorch version.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence

import torch

from gru4rec.backend.torch_ops import (
    EPS,
    GRULayerCache,
    OuterRows,
    RowGrads,
    TorchOps,
    dropout_mask,
)
from gru4rec.kernels import Kernels

__all__ = ["CompiledOps"]


class CompiledOps(TorchOps):
    """CPU float32 only; see the module docstring."""

    name = "compiled"

    def __init__(self, kernels: Kernels) -> None:
        super().__init__()
        self.k = kernels
        # row-update scratch per table: (n_rows,) int32 slot map (all -1 between calls),
        # (>= K, C) gradient buffer, (>= K,) distinct rows; and outer_rows_update's work
        self._scratch: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._work = torch.empty(0, dtype=torch.int64)

    def cross_entropy_grad(self, r: torch.Tensor, batch_size: int, log_q: torch.Tensor | None,
                           logq: float, row_weight: torch.Tensor | None = None,
                           col_weight: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor | float, torch.Tensor]:
        if row_weight is not None or col_weight is not None:
            return super().cross_entropy_grad(r, batch_size, log_q, logq, row_weight,
                                              col_weight)
        # one pass per row instead of ~15 tensor ops; returns the summed row losses
        return self.k.cross_entropy_(r, batch_size, log_q, logq) / batch_size, r

    def bpr_max_grad(self, r: torch.Tensor, batch_size: int, bpreg: float, elu_param: float,
                     row_weight: torch.Tensor | None = None,
                     col_weight: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor | float, torch.Tensor]:
        if row_weight is not None or col_weight is not None:
            return super().bpr_max_grad(r, batch_size, bpreg, elu_param, row_weight,
                                        col_weight)
        return self.k.bpr_max_(r, batch_size, bpreg, elu_param) / batch_size, r

    def gru_forward(self, vx: torch.Tensor, h: torch.Tensor, wrz: torch.Tensor,
                    wh: torch.Tensor, drop: float, aug: torch.Tensor | None
                    ) -> tuple[torch.Tensor, GRULayerCache]:
        # one fused pass for the gates and one for the output around the two products
        m, n = h.shape
        h = h.contiguous()
        rz, rh = torch.empty(m, 2 * n), torch.empty(m, n)
        self.k.gru_gates(vx, h @ wrz, h, rz, rh)
        c, out = torch.empty(m, n), torch.empty(m, n)
        mask = dropout_mask(out, drop)  # drawn at the same point as in TorchOps
        self.k.gru_output(vx, rh @ wh, h, rz, mask, c, out, aug)
        return out, GRULayerCache(h, rz, rh, c, mask)

    def gru_backward(self, d_out: torch.Tensor, k: GRULayerCache, wh: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        m, n = k.h.shape
        d_vx = torch.empty(m, 3 * n)  # [candidate, reset, update]
        self.k.gru_back_out(d_out.contiguous(), k.mask, k.rz, k.c, k.h, d_vx)
        d_wh = k.rh.t() @ d_vx[:, :n]
        d_b = torch.empty(3 * n)
        self.k.gru_back_gates(d_vx[:, :n] @ wh.t(), k.h, k.rz, d_vx, d_b)
        return d_vx, d_wh, k.h.t() @ d_vx[:, n:], d_b

    def adagrad_dense(self, params: Sequence[torch.Tensor], accs: Sequence[torch.Tensor],
                      vels: Sequence[torch.Tensor] | None, grads: list[torch.Tensor],
                      lr: float, momentum: float) -> None:
        # one fused pass per tensor instead of 8 foreach ops
        for i, (p, acc, g) in enumerate(zip(params, accs, grads, strict=True)):
            self.k.adagrad_dense(p, acc, None if vels is None else vels[i], g.contiguous(),
                                 lr, momentum, EPS)

    def adagrad_rows(self, table: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None,
                     parts: Sequence[RowGrads | OuterRows], lr: float, momentum: float) -> None:
        outer = parts[0] if parts and isinstance(parts[0], OuterRows) else None
        plain = [p for p in parts if not isinstance(p, OuterRows)]
        if outer is not None and len(plain) == len(parts) - 1:
            self._outer_rows(table, acc, vel, outer, plain, lr, momentum)
            return
        if len(plain) != len(parts):  # factored parts elsewhere than first: form them
            plain = [p.formed() if isinstance(p, OuterRows) else p for p in parts]
        slot, buf, uniq = self._row_scratch(table, sum(idx.shape[0] for idx, _ in plain))
        u = 0
        for idx, g in plain:
            g = g if g.stride(1) == 1 else g.contiguous()  # rows may be strided, values not
            u = self.k.rows_accumulate(slot, buf, uniq, u, idx.contiguous(), g)
        self.k.rows_apply(table, acc, vel, slot, buf, uniq, u, lr, momentum, EPS)

    def _outer_rows(self, table: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None,
                    outer: OuterRows, extra: list[RowGrads], lr: float,
                    momentum: float) -> None:
        """Each column row's gradient g[:, j]^T h summed in registers, never the (N, C)
        product; at most one extra plain part (the shared table's input rows)."""
        if len(extra) > 1:
            super().adagrad_rows(table, acc, vel, [outer, *extra], lr, momentum)
            return
        idx2, g2 = extra[0] if extra else (None, None)
        total = outer.cols.shape[0] + (0 if idx2 is None else idx2.shape[0])
        slot, _, _ = self._row_scratch(table, total)
        if self._work.shape[0] < 3 * total + 1:
            self._work = torch.empty(3 * total + 1, dtype=torch.int64)
        if g2 is not None and g2.stride(1) != 1:
            g2 = g2.contiguous()
        self.k.outer_rows_update(
            table, acc, vel, slot, outer.cols.contiguous(), outer.g.contiguous(),
            outer.h.contiguous(), None if idx2 is None else idx2.contiguous(), g2,
            self._work, lr, momentum, EPS)

    def _row_scratch(self, table: torch.Tensor,
                     k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The scratch of ``table`` with room for k gradient rows."""
        key = table.data_ptr()
        have = self._scratch.get(key)
        if have is None or have[0].shape[0] != table.shape[0] or have[1].shape != (
                max(k, have[1].shape[0]), table.shape[1]):
            size = k if have is None else max(k, have[1].shape[0])
            self._scratch[key] = (torch.full((table.shape[0],), -1, dtype=torch.int32),
                                  torch.empty(size, table.shape[1]),
                                  torch.empty(size, dtype=torch.int64))
        return self._scratch[key]

    def log_q_columns(self, log_support: torch.Tensor, cols: torch.Tensor, m: int,
                      alpha: float, out: torch.Tensor | None = None) -> torch.Tensor:
        # one pass instead of gather, slices, multiply, cat
        n = cols.shape[0]
        out = torch.empty(n) if out is None or out.shape[0] < n else out[:n]
        self.k.log_q_columns(out, cols, m, log_support, alpha)
        return out

    def sample_cdf(self, cdf: torch.Tensor, guide: torch.Tensor, u: torch.Tensor
                   ) -> torch.Tensor:
        # same result, ~1-2 probes per draw instead of ~17 for the binary search
        idx = torch.empty(u.shape[0], dtype=torch.int64)
        self.k.sample_cdf(cdf, guide, u, idx)
        return idx

    def count_vs_target(self, scores: torch.Tensor, target_scores: torch.Tensor,
                        greater: torch.Tensor, equal: torch.Tensor) -> None:
        if scores.dtype != torch.float32 or scores.stride(1) != 1:
            super().count_vs_target(scores, target_scores, greater, equal)
            return
        # one pass instead of four, no temporaries
        self.k.count_vs_target(scores, target_scores.reshape(-1).contiguous(), greater, equal)

    def scorer(self, weights: torch.Tensor, bias: torch.Tensor
               ) -> Callable[[torch.Tensor], torch.Tensor]:
        # a few rows against every item, where BLAS runs at a fraction of the CPU's speed
        # (1.2-2.6x slower on 1-16 rows): a kernel over 32-item panels of the weights
        panels, b = _on_huge_pages(self.k.pack_panels(weights)), bias.contiguous()

        def score(h: torch.Tensor) -> torch.Tensor:
            out = torch.empty(h.shape[0], b.shape[0])
            self.k.score_rows(h.contiguous(), panels, b, out)
            return out
        return score


_HUGE_PAGE = 2 << 20  # bytes of a transparent huge page on x86-64 and arm64 Linux


def _on_huge_pages(t: torch.Tensor) -> torch.Tensor:
    """A copy of contiguous ``t`` in memory backed by transparent huge pages where the system
    offers them (Linux, ``madvise`` mode), else ``t`` itself.

    Scoring reads the whole packed item table for every event; with 4 KiB pages a 15 MB
    table spans ~3,700 TLB entries, which a server that idles between requests finds cold
    (one scoring took 1.3 ms instead of 0.95 ms on 37,500 items)."""
    nbytes = t.numel() * t.element_size()
    if nbytes < _HUGE_PAGE or not hasattr(mmap, "MADV_HUGEPAGE"):
        return t
    try:
        buf = mmap.mmap(-1, -(-nbytes // _HUGE_PAGE) * _HUGE_PAGE,
                        flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        buf.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):  # no anonymous maps or no THP here: the plain copy works
        return t
    out = torch.frombuffer(buf, dtype=t.dtype, count=t.numel()).view(t.shape)  # keeps buf
    out.copy_(t)
    return out
