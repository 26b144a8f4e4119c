"""The Python face of the compiled kernels: one checked wrapper per C function.

Every tensor argument is checked (see :mod:`gru4rec.kernels.checks`) before its pointer
crosses to C; a wrong call raises ValueError naming the function and the argument. Index
VALUES (rows of a table, columns of a score block) are not checked: that would take a pass
over the data on every step. The session-kNN wrappers (:mod:`gru4rec.kernels.knn_wrappers`,
a base class of :class:`Kernels`) take numpy arrays instead.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch

from gru4rec.kernels.checks import ANY, ROWS, fail, need
from gru4rec.kernels.knn_wrappers import KNN_SIGNATURES, KNNKernels

__all__ = ["Kernels"]

_VOID, _I64, _F32, _F64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_double
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "bpr_max_rows": (_F64, [_VOID, _I64, _I64, _F32, _F32, _F32]),
    "xe_rows": (_F64, [_VOID, _I64, _I64, _F32, _VOID, _F32]),
    "adagrad_dense": (None, [_VOID, _VOID, _VOID, _VOID, _I64, _F32, _F32, _F32]),
    "rows_accumulate": (_I64, [_VOID, _VOID, _VOID, _I64, _I64, _VOID, _I64, _VOID, _I64,
                               _I64]),
    "rows_apply": (None, [_VOID, _VOID, _VOID, _I64, _VOID, _VOID, _VOID, _I64, _F32, _F32,
                          _F32]),
    "gru_gates": (None, [_VOID, _I64, _VOID, _VOID, _I64, _I64, _VOID, _VOID]),
    "gru_output": (None, [_VOID, _I64, _VOID, _VOID, _VOID, _VOID, _I64, _I64, _VOID, _VOID,
                          _VOID]),
    "gru_back_out": (None, [_VOID, _VOID, _VOID, _VOID, _VOID, _I64, _I64, _VOID]),
    "gru_back_gates": (None, [_VOID, _VOID, _VOID, _I64, _I64, _VOID, _VOID]),
    "outer_rows_update": (_I64, [_VOID, _VOID, _VOID, _I64, _VOID, _VOID, _VOID, _I64, _I64,
                                 _VOID, _VOID, _VOID, _I64, _I64, _I64, _VOID, _F32, _F32,
                                 _F32]),
    "score_rows": (None, [_VOID, _I64, _I64, _VOID, _VOID, _I64, _VOID]),
    "sample_cdf": (None, [_VOID, _I64, _VOID, _I64, _VOID, _I64, _VOID]),
    "log_q_columns": (None, [_VOID, _VOID, _I64, _I64, _VOID, _F32]),
    "count_vs_target": (None, [_VOID, _I64, _I64, _I64, _VOID, _VOID, _VOID]),
    **KNN_SIGNATURES,
}

F32, F64, I64, I32 = torch.float32, torch.float64, torch.int64, torch.int32


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _scores(fn: str, r: torch.Tensor, batch_size: int) -> tuple[int, int]:
    """Checks of the loss kernels' (M, N) score block, whose row j's positive is column j."""
    need(fn, "r", r, F32, (None, None), "(M, N)")
    m, n = r.shape
    if m > n:
        raise fail(fn, "r", "(M, N) with M <= N (row j's target is column j)", r)
    if not batch_size > 0:
        raise fail(fn, "batch_size", "positive", repr(batch_size))
    return m, n


def _optimiser_state(fn: str, acc: torch.Tensor, vel: torch.Tensor | None, momentum: float,
                     shape: tuple[int, ...]) -> None:
    """Checks of the Adagrad accumulator and velocity (needed with momentum: the kernel
    reads it) of a parameter of ``shape``."""
    need(fn, "acc", acc, F32, shape, "p.shape")
    need(fn, "vel", vel, F32, shape, "p.shape", optional=momentum <= 0)


class Kernels(KNNKernels):
    """Checked wrappers around the compiled functions: tensors are CPU float32 (indices
    int64, slot maps int32, sampling float64), contiguous unless a method says otherwise."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        for name, (res, args) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        self._lib = lib

    def bpr_max_(self, r: torch.Tensor, batch_size: int, bpreg: float,
                 elu_param: float) -> float:
        """(M, N) raw scores -> d loss / d r in place; returns the summed row losses."""
        m, n = _scores("bpr_max_", r, batch_size)
        return float(self._lib.bpr_max_rows(r.data_ptr(), m, n, 1.0 / batch_size, bpreg,
                                            elu_param))

    def cross_entropy_(self, r: torch.Tensor, batch_size: int, log_q: torch.Tensor | None,
                       logq: float) -> float:
        """(M, N) raw scores -> d loss / d r in place; returns the summed row losses.
        log_q: (N,) log sampling weights, used when logq > 0."""
        m, n = _scores("cross_entropy_", r, batch_size)
        need("cross_entropy_", "log_q", log_q, F32, (n,), "(N,)", optional=True)
        use = log_q is not None and logq > 0
        return float(self._lib.xe_rows(r.data_ptr(), m, n, 1.0 / batch_size,
                                       _ptr(log_q) if use else None, logq))

    def adagrad_dense(self, p: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None,
                      g: torch.Tensor, lr: float, momentum: float, eps: float) -> None:
        """In-place Adagrad (+ momentum) of all values of p with gradient g."""
        fn = "adagrad_dense"
        need(fn, "p", p, F32, None)
        shape = tuple(p.shape)
        _optimiser_state(fn, acc, vel, momentum, shape)
        need(fn, "g", g, F32, shape, "p.shape")
        self._lib.adagrad_dense(p.data_ptr(), acc.data_ptr(), _ptr(vel), g.data_ptr(),
                                p.numel(), lr, momentum, eps)

    def rows_accumulate(self, slot: torch.Tensor, buf: torch.Tensor, uniq: torch.Tensor,
                        u: int, idx: torch.Tensor, g: torch.Tensor) -> int:
        """Sum gradient rows g (K, width) of table rows idx (K,) into buf; returns the
        number of distinct rows so far. g may be a column slice (row stride kept)."""
        fn = "rows_accumulate"
        need(fn, "slot", slot, I32, (None,), "(R,)")
        need(fn, "buf", buf, F32, (None, None), "(rows, C)")
        need(fn, "idx", idx, I64, (None,), "(K,)")
        k, c = idx.shape[0], buf.shape[1]
        need(fn, "g", g, F32, (k, None), "(K, width)", ROWS)
        if g.shape[1] > c:
            raise fail(fn, "g", f"at most as wide as buf (C = {c})", g)
        if not 0 <= u:
            raise fail(fn, "u", "a count >= 0 (the distinct rows already in buf)", repr(u))
        need(fn, "uniq", uniq, I64, (None,), "(rows,)")
        if buf.shape[0] < u + k:
            raise fail(fn, "buf", f"a tensor with at least u + K = {u + k} rows", buf)
        if uniq.shape[0] < u + k:
            raise fail(fn, "uniq", f"a tensor with at least u + K = {u + k} entries", uniq)
        return int(self._lib.rows_accumulate(slot.data_ptr(), buf.data_ptr(), uniq.data_ptr(),
                                             u, c, idx.data_ptr(), k, g.data_ptr(),
                                             g.stride(0), g.shape[1]))

    def rows_apply(self, p: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None,
                   slot: torch.Tensor, buf: torch.Tensor, uniq: torch.Tensor, u: int,
                   lr: float, momentum: float, eps: float) -> None:
        """Adagrad on the u distinct rows collected by :meth:`rows_accumulate`."""
        fn = "rows_apply"
        need(fn, "p", p, F32, (None, None), "(R, C)")
        r, c = p.shape
        _optimiser_state(fn, acc, vel, momentum, (r, c))
        need(fn, "slot", slot, I32, (r,), "(R,)")
        need(fn, "buf", buf, F32, (None, c), "(rows, C)")
        need(fn, "uniq", uniq, I64, (None,), "(rows,)")
        if not 0 <= u <= min(buf.shape[0], uniq.shape[0]):
            raise fail(fn, "u", "between 0 and the rows of buf and of uniq", repr(u))
        self._lib.rows_apply(p.data_ptr(), acc.data_ptr(), _ptr(vel), c, slot.data_ptr(),
                             buf.data_ptr(), uniq.data_ptr(), u, lr, momentum, eps)

    def outer_rows_update(self, p: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None,
                          slot: torch.Tensor, cols: torch.Tensor, g: torch.Tensor,
                          h: torch.Tensor, idx2: torch.Tensor | None, g2: torch.Tensor | None,
                          work: torch.Tensor, lr: float, momentum: float, eps: float) -> int:
        """Adagrad on the distinct rows of table p (R, C) whose gradient is g[:, j]^T h for
        column j of row cols[j] (g (M, N), h (M, C)), plus the rows g2 (K2, w <= C) of rows
        idx2 (K2,) when given; work: >= 3 (N + K2) + 1 int64. Returns the distinct rows."""
        fn = "outer_rows_update"
        need(fn, "p", p, F32, (None, None), "(R, C)")
        r, c = p.shape
        _optimiser_state(fn, acc, vel, momentum, (r, c))
        need(fn, "slot", slot, I32, (r,), "(R,)")
        need(fn, "g", g, F32, (None, None), "(M, N)")
        m, n = g.shape
        need(fn, "cols", cols, I64, (n,), "(N,)")
        need(fn, "h", h, F32, (m, c), "(M, C)")
        k2 = 0
        if idx2 is not None or g2 is not None:
            need(fn, "idx2", idx2, I64, (None,), "(K2,)")
            assert idx2 is not None
            k2 = idx2.shape[0]
            need(fn, "g2", g2, F32, (k2, None), "(K2, w)", ROWS)
            assert g2 is not None
            if g2.shape[1] > c:
                raise fail(fn, "g2", f"at most as wide as p (C = {c})", g2)
        need(fn, "work", work, I64, (None,), "(>= 3 (N + K2) + 1,)")
        if work.shape[0] < 3 * (n + k2) + 1:
            raise fail(fn, "work", f"a tensor with at least 3 (N + K2) + 1 = {3 * (n + k2) + 1} "
                       "entries", work)
        u = self._lib.outer_rows_update(
            p.data_ptr(), acc.data_ptr(), _ptr(vel), c, slot.data_ptr(), cols.data_ptr(),
            g.data_ptr(), m, n, h.data_ptr(), _ptr(idx2), _ptr(g2), k2,
            0 if g2 is None else g2.stride(0), 0 if g2 is None else g2.shape[1],
            work.data_ptr(), lr, momentum, eps)
        if u < 0:
            raise MemoryError("out of memory in the row update kernel")
        return int(u)

    def gru_gates(self, a: torch.Tensor, hr: torch.Tensor, h: torch.Tensor, rz: torch.Tensor,
                  rh: torch.Tensor) -> None:
        """rz (M, 2H) = sigmoid(a[:, H:] + hr), rh (M, H) = r * h; a (M, 3H) input
        pre-activations (rows may be strided), hr (M, 2H) = h @ Wrz."""
        fn = "gru_gates"
        need(fn, "h", h, F32, (None, None), "(M, H)")
        m, hd = h.shape
        need(fn, "a", a, F32, (m, 3 * hd), "(M, 3H)", ROWS)
        need(fn, "hr", hr, F32, (m, 2 * hd), "(M, 2H)")
        need(fn, "rz", rz, F32, (m, 2 * hd), "(M, 2H)")
        need(fn, "rh", rh, F32, (m, hd), "(M, H)")
        self._lib.gru_gates(a.data_ptr(), a.stride(0), hr.data_ptr(), h.data_ptr(), m, hd,
                            rz.data_ptr(), rh.data_ptr())

    def gru_output(self, a: torch.Tensor, hc: torch.Tensor, h: torch.Tensor, rz: torch.Tensor,
                   mask: torch.Tensor | None, c: torch.Tensor, out: torch.Tensor,
                   h_aug: torch.Tensor | None) -> None:
        """c (M, H) = tanh(a[:, :H] + hc), out (M, H) = lerp(h, c, z) * mask, also copied
        into h_aug[:, :H] (M, H+1) when given; hc (M, H) = (r * h) @ Wh."""
        fn = "gru_output"
        need(fn, "h", h, F32, (None, None), "(M, H)")
        m, hd = h.shape
        need(fn, "a", a, F32, (m, 3 * hd), "(M, 3H)", ROWS)
        need(fn, "hc", hc, F32, (m, hd), "(M, H)")
        need(fn, "rz", rz, F32, (m, 2 * hd), "(M, 2H)")
        need(fn, "mask", mask, F32, (m, hd), "(M, H)", optional=True)
        need(fn, "c", c, F32, (m, hd), "(M, H)")
        need(fn, "out", out, F32, (m, hd), "(M, H)")
        need(fn, "h_aug", h_aug, F32, (m, hd + 1), "(M, H+1)", optional=True)
        self._lib.gru_output(a.data_ptr(), a.stride(0), hc.data_ptr(), h.data_ptr(),
                             rz.data_ptr(), _ptr(mask), m, hd, c.data_ptr(), out.data_ptr(),
                             _ptr(h_aug))

    def gru_back_out(self, dout: torch.Tensor, mask: torch.Tensor | None, rz: torch.Tensor,
                     c: torch.Tensor, h: torch.Tensor, dvx: torch.Tensor) -> None:
        """From dout (M, H): dvx[:, :H] (candidate) and dvx[:, 2H:] (update gate) gradients
        of the (M, 3H) pre-activations."""
        fn = "gru_back_out"
        need(fn, "h", h, F32, (None, None), "(M, H)")
        m, hd = h.shape
        need(fn, "dout", dout, F32, (m, hd), "(M, H)")
        need(fn, "mask", mask, F32, (m, hd), "(M, H)", optional=True)
        need(fn, "rz", rz, F32, (m, 2 * hd), "(M, 2H)")
        need(fn, "c", c, F32, (m, hd), "(M, H)")
        need(fn, "dvx", dvx, F32, (m, 3 * hd), "(M, 3H)")
        self._lib.gru_back_out(dout.data_ptr(), _ptr(mask), rz.data_ptr(), c.data_ptr(),
                               h.data_ptr(), m, hd, dvx.data_ptr())

    def gru_back_gates(self, dr: torch.Tensor, h: torch.Tensor, rz: torch.Tensor,
                       dvx: torch.Tensor, db: torch.Tensor) -> None:
        """dvx[:, H:2H] (reset gate) from dr (M, H) = dvx[:, :H] @ Wh^T; db (3H) = the
        column sums of dvx."""
        fn = "gru_back_gates"
        need(fn, "h", h, F32, (None, None), "(M, H)")
        m, hd = h.shape
        need(fn, "dr", dr, F32, (m, hd), "(M, H)")
        need(fn, "rz", rz, F32, (m, 2 * hd), "(M, 2H)")
        need(fn, "dvx", dvx, F32, (m, 3 * hd), "(M, 3H)")
        need(fn, "db", db, F32, (3 * hd,), "(3H,)")
        self._lib.gru_back_gates(dr.data_ptr(), h.data_ptr(), rz.data_ptr(), m, hd,
                                 dvx.data_ptr(), db.data_ptr())

    PANEL = 32  # items per panel of score_rows' packed weights

    @classmethod
    def pack_panels(cls, w: torch.Tensor) -> torch.Tensor:
        """(N, K) item weights -> the panel layout of :meth:`score_rows`: (ceil(N / 32), K,
        32), zero padded, contiguous."""
        need("pack_panels", "w", w, F32, (None, None), "(N, K)", ANY)
        n, kd = w.shape
        tiles = -(-n // cls.PANEL)
        padded = torch.zeros(tiles * cls.PANEL, kd, dtype=torch.float32)
        padded[:n] = w
        return padded.view(tiles, cls.PANEL, kd).transpose(1, 2).contiguous()

    def score_rows(self, h: torch.Tensor, panels: torch.Tensor, b: torch.Tensor,
                   out: torch.Tensor) -> None:
        """out (M, N) = h (M, K) @ W^T + b (N,) with W packed by :meth:`pack_panels`; all
        contiguous float32. A few rows against every item, where BLAS is slow."""
        fn = "score_rows"
        need(fn, "h", h, F32, (None, None), "(M, K)")
        m, kd = h.shape
        need(fn, "out", out, F32, (m, None), "(M, N)")
        n = out.shape[1]
        need(fn, "panels", panels, F32, (-(-n // self.PANEL), kd, self.PANEL),
             "(ceil(N / 32), K, 32)")
        need(fn, "b", b, F32, (n,), "(N,)")
        self._lib.score_rows(h.data_ptr(), m, kd, panels.data_ptr(), b.data_ptr(), n,
                             out.data_ptr())

    def sample_cdf(self, cdf: torch.Tensor, guide: torch.Tensor, u: torch.Tensor,
                   out: torch.Tensor) -> None:
        """out[i] = searchsorted(cdf, u[i], right=True) clamped to len(cdf) - 1, for float64
        cdf (n,) and u, int64 guide (K,) = searchsorted(cdf, arange(K) / K, right=True)."""
        fn = "sample_cdf"
        need(fn, "cdf", cdf, F64, (None,), "(n,)")
        if cdf.shape[0] < 1:
            raise fail(fn, "cdf", "a non-empty tensor", cdf)
        need(fn, "guide", guide, I64, (None,), "(K,)")
        if guide.shape[0] < 1:
            raise fail(fn, "guide", "a non-empty tensor", guide)
        need(fn, "u", u, F64, None)
        need(fn, "out", out, I64, tuple(u.shape), "u.shape")
        self._lib.sample_cdf(cdf.data_ptr(), cdf.shape[0], guide.data_ptr(), guide.shape[0],
                             u.data_ptr(), u.numel(), out.data_ptr())

    def log_q_columns(self, out: torch.Tensor, cols: torch.Tensor, m: int,
                      log_support: torch.Tensor, alpha: float) -> None:
        """out (N,) = log_support[cols], times alpha for the columns after the first m."""
        fn = "log_q_columns"
        need(fn, "cols", cols, I64, (None,), "(N,)")
        need(fn, "out", out, F32, (cols.shape[0],), "(N,)")
        need(fn, "log_support", log_support, F32, (None,), "(n_items,)")
        self._lib.log_q_columns(out.data_ptr(), cols.data_ptr(), cols.shape[0], m,
                                log_support.data_ptr(), alpha)

    def count_vs_target(self, scores: torch.Tensor, target_scores: torch.Tensor,
                        greater: torch.Tensor, equal: torch.Tensor) -> None:
        """greater[i] += #{scores[i] > t[i]}, equal[i] += #{scores[i] == t[i]} for an (M, K)
        float32 block (rows may be strided), t (M,) float32, counts (M,) int64."""
        fn = "count_vs_target"
        need(fn, "scores", scores, F32, (None, None), "(M, K)", ROWS)
        m, n = scores.shape
        need(fn, "target_scores", target_scores, F32, (m,), "(M,)")
        need(fn, "greater", greater, I64, (m,), "(M,)")
        need(fn, "equal", equal, I64, (m,), "(M,)")
        self._lib.count_vs_target(scores.data_ptr(), m, n, scores.stride(0),
                                  target_scores.data_ptr(), greater.data_ptr(),
                                  equal.data_ptr())
