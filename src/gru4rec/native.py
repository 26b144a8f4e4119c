"""Fused CPU kernels (``kernels.c``), compiled on first use and called through ctypes.

The C source ships with the package. The first time CPU training or evaluation needs it, it
is compiled with the system C compiler (``cc``, or ``$CC``) for this machine's CPU and cached
under ``$GRU4REC_CACHE_DIR`` (default ``~/.cache/gru4rec``), keyed by the source, the flags
and the CPU. Compilation takes about a second and needs no PyTorch headers. Without a
compiler, or with ``GRU4REC_NATIVE=0``, the equivalent pure-PyTorch code runs instead (same
results up to float rounding, slower); :func:`kernels` then returns None.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

__all__ = ["Kernels", "kernels"]

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("kernels.c")
# -ffp-contract=off: no implicit multiply-add, so results do not vary with the compiler;
# -fno-math-errno: lets sqrtf vectorise.
_FLAGS = ["-O3", "-fPIC", "-shared", "-std=c11", "-ffp-contract=off", "-fno-math-errno"]
_ARCH_FLAGS = ["-march=native"]
# -fopenmp: the loss and row-update kernels split their rows over threads. Only used when
# PyTorch itself runs on GNU OpenMP (libgomp.so.1, as the Linux wheels do): the kernels then
# resolve to the very runtime PyTorch has loaded and share its already-spinning thread pool.
# Elsewhere two runtimes would fight over the cores, so -fopenmp-simd only honours the simd
# pragmas, single-threaded.
_OPENMP, _SIMD_ONLY = ["-fopenmp"], ["-fopenmp-simd"]

_VOID, _I64, _F32, _F64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_double
_SIGNATURES = {
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
}

_loaded: Kernels | None = None
_tried = False


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), "")
    except OSError:
        return platform.processor()


def _cache_dir() -> Path:
    base = os.environ.get("GRU4REC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gru4rec")
    return Path(base)


def _compile(cc: str, flags: list[str], target: Path) -> str | None:
    """Compile the kernels into ``target`` atomically; returns an error text or None."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *flags, str(_SOURCE), "-o", tmp, "-lm"],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            return (proc.stderr or proc.stdout).strip()[-500:]
        os.replace(tmp, target)
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _torch_openmp_is_gomp() -> bool:
    """Whether this process has GNU OpenMP loaded (by PyTorch), so a kernel library linked
    with -fopenmp binds to the same runtime."""
    try:
        with open("/proc/self/maps") as fh:
            return any("libgomp" in line for line in fh)
    except OSError:  # not Linux
        return False


def _build() -> Path | None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") \
        or shutil.which("clang")
    if cc is None:
        log.warning("no C compiler found: training runs on the slower pure-PyTorch CPU path "
                    "(install gcc or clang to enable the fused kernels)")
        return None
    source = _SOURCE.read_bytes()
    omp = _OPENMP if _torch_openmp_is_gomp() else _SIMD_ONLY
    for flags in (_FLAGS + omp + _ARCH_FLAGS, _FLAGS + omp, _FLAGS + _SIMD_ONLY):
        key = hashlib.sha256(b"\0".join([source, " ".join([cc, *flags]).encode(),
                                          platform.machine().encode(),
                                          _cpu_model().encode()])).hexdigest()[:16]
        target = _cache_dir() / f"kernels-{key}.so"
        if target.exists():
            return target
        error = _compile(cc, flags, target)
        if error is None:
            log.info("compiled the CPU kernels into %s", target)
            return target
        log.debug("compiling the CPU kernels with %s failed: %s", flags, error)
    log.warning("could not compile the CPU kernels with %s: training runs on the slower "
                "pure-PyTorch CPU path", cc)
    return None


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class Kernels:
    """Typed wrappers around the compiled functions; tensors must be contiguous CPU float32
    (indices int64)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        for name, (res, args) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        self._lib = lib

    def bpr_max_(self, r: torch.Tensor, batch_size: int, bpreg: float,
                 elu_param: float) -> float:
        """(M, N) raw scores -> d loss / d r in place; returns the summed row losses."""
        m, n = r.shape
        return self._lib.bpr_max_rows(r.data_ptr(), m, n, 1.0 / batch_size, bpreg,
                                      elu_param)

    def cross_entropy_(self, r: torch.Tensor, batch_size: int, log_q: torch.Tensor | None,
                       logq: float) -> float:
        """(M, N) raw scores -> d loss / d r in place; returns the summed row losses.
        log_q: (N,) log sampling weights, used when logq > 0."""
        m, n = r.shape
        use = log_q is not None and logq > 0
        return self._lib.xe_rows(r.data_ptr(), m, n, 1.0 / batch_size,
                                 _ptr(log_q) if use else None, logq)

    def adagrad_dense(self, p: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None,
                      g: torch.Tensor, lr: float, momentum: float, eps: float) -> None:
        """In-place Adagrad (+ momentum) of all values of p with gradient g."""
        self._lib.adagrad_dense(p.data_ptr(), acc.data_ptr(), _ptr(vel), g.data_ptr(),
                                p.numel(), lr, momentum, eps)

    def rows_accumulate(self, slot: torch.Tensor, buf: torch.Tensor, uniq: torch.Tensor,
                        u: int, idx: torch.Tensor, g: torch.Tensor) -> int:
        """Sum gradient rows g (K, width) of table rows idx (K,) into buf; returns the
        number of distinct rows so far. g may be a column slice (row stride kept)."""
        return self._lib.rows_accumulate(slot.data_ptr(), buf.data_ptr(), uniq.data_ptr(), u,
                                         buf.shape[1], idx.data_ptr(), idx.shape[0],
                                         g.data_ptr(), g.stride(0), g.shape[1])

    def rows_apply(self, p: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None,
                   slot: torch.Tensor, buf: torch.Tensor, uniq: torch.Tensor, u: int,
                   lr: float, momentum: float, eps: float) -> None:
        """Adagrad on the u distinct rows collected by :meth:`rows_accumulate`."""
        self._lib.rows_apply(p.data_ptr(), acc.data_ptr(), _ptr(vel), p.shape[1],
                             slot.data_ptr(), buf.data_ptr(), uniq.data_ptr(), u, lr,
                             momentum, eps)


    def outer_rows_update(self, p: torch.Tensor, acc: torch.Tensor, vel: torch.Tensor | None,
                          slot: torch.Tensor, cols: torch.Tensor, g: torch.Tensor,
                          h: torch.Tensor, idx2: torch.Tensor | None, g2: torch.Tensor | None,
                          work: torch.Tensor, lr: float, momentum: float, eps: float) -> int:
        """Adagrad on the distinct rows of table p (R, C) whose gradient is g[:, j]^T h for
        column j of row cols[j] (g (M, N), h (M, C)), plus the rows g2 (K2, w <= C) of rows
        idx2 (K2,) when given; work: >= 3 (N + K2) + 1 int64. Returns the distinct rows."""
        m, n = g.shape
        k2 = 0 if idx2 is None else idx2.shape[0]
        u = self._lib.outer_rows_update(
            p.data_ptr(), acc.data_ptr(), _ptr(vel), p.shape[1], slot.data_ptr(),
            cols.data_ptr(), g.data_ptr(), m, n, h.data_ptr(), _ptr(idx2), _ptr(g2), k2,
            0 if g2 is None else g2.stride(0), 0 if g2 is None else g2.shape[1],
            work.data_ptr(), lr, momentum, eps)
        if u < 0:
            raise MemoryError("out of memory in the row update kernel")
        return u

    def gru_gates(self, a: torch.Tensor, hr: torch.Tensor, h: torch.Tensor, rz: torch.Tensor,
                  rh: torch.Tensor) -> None:
        """rz (M, 2H) = sigmoid(a[:, H:] + hr), rh (M, H) = r * h; a (M, 3H) input
        pre-activations (rows may be strided), hr (M, 2H) = h @ Wrz."""
        m, hd = h.shape
        self._lib.gru_gates(a.data_ptr(), a.stride(0), hr.data_ptr(), h.data_ptr(), m, hd,
                            rz.data_ptr(), rh.data_ptr())

    def gru_output(self, a: torch.Tensor, hc: torch.Tensor, h: torch.Tensor, rz: torch.Tensor,
                   mask: torch.Tensor | None, c: torch.Tensor, out: torch.Tensor,
                   h_aug: torch.Tensor | None) -> None:
        """c (M, H) = tanh(a[:, :H] + hc), out (M, H) = lerp(h, c, z) * mask, also copied
        into h_aug[:, :H] (M, H+1) when given; hc (M, H) = (r * h) @ Wh."""
        m, hd = h.shape
        self._lib.gru_output(a.data_ptr(), a.stride(0), hc.data_ptr(), h.data_ptr(),
                             rz.data_ptr(), _ptr(mask), m, hd, c.data_ptr(), out.data_ptr(),
                             _ptr(h_aug))

    def gru_back_out(self, dout: torch.Tensor, mask: torch.Tensor | None, rz: torch.Tensor,
                     c: torch.Tensor, h: torch.Tensor, dvx: torch.Tensor) -> None:
        """From dout (M, H): dvx[:, :H] (candidate) and dvx[:, 2H:] (update gate) gradients
        of the (M, 3H) pre-activations."""
        m, hd = h.shape
        self._lib.gru_back_out(dout.data_ptr(), _ptr(mask), rz.data_ptr(), c.data_ptr(),
                               h.data_ptr(), m, hd, dvx.data_ptr())

    def gru_back_gates(self, dr: torch.Tensor, h: torch.Tensor, rz: torch.Tensor,
                       dvx: torch.Tensor, db: torch.Tensor) -> None:
        """dvx[:, H:2H] (reset gate) from dr (M, H) = dvx[:, :H] @ Wh^T; db (3H) = the
        column sums of dvx."""
        m, hd = h.shape
        self._lib.gru_back_gates(dr.data_ptr(), h.data_ptr(), rz.data_ptr(), m, hd,
                                 dvx.data_ptr(), db.data_ptr())

    PANEL = 32  # items per panel of score_rows' packed weights

    @classmethod
    def pack_panels(cls, w: torch.Tensor) -> torch.Tensor:
        """(N, K) item weights -> the panel layout of :meth:`score_rows`: (ceil(N / 32), K,
        32), zero padded, contiguous."""
        n, kd = w.shape
        tiles = -(-n // cls.PANEL)
        padded = torch.zeros(tiles * cls.PANEL, kd, dtype=torch.float32)
        padded[:n] = w
        return padded.view(tiles, cls.PANEL, kd).transpose(1, 2).contiguous()

    def score_rows(self, h: torch.Tensor, panels: torch.Tensor, b: torch.Tensor,
                   out: torch.Tensor) -> None:
        """out (M, N) = h (M, K) @ W^T + b (N,) with W packed by :meth:`pack_panels`; all
        contiguous float32. A few rows against every item, where BLAS is slow."""
        m, kd = h.shape
        self._lib.score_rows(h.data_ptr(), m, kd, panels.data_ptr(), b.data_ptr(),
                             out.shape[1], out.data_ptr())

    def sample_cdf(self, cdf: torch.Tensor, guide: torch.Tensor, u: torch.Tensor,
                   out: torch.Tensor) -> None:
        """out[i] = searchsorted(cdf, u[i], right=True) clamped to len(cdf) - 1, for float64
        cdf (n,) and u, int64 guide (K,) = searchsorted(cdf, arange(K) / K, right=True)."""
        self._lib.sample_cdf(cdf.data_ptr(), cdf.shape[0], guide.data_ptr(), guide.shape[0],
                             u.data_ptr(), u.numel(), out.data_ptr())

    def log_q_columns(self, out: torch.Tensor, cols: torch.Tensor, m: int,
                      log_support: torch.Tensor, alpha: float) -> None:
        """out (N,) = log_support[cols], times alpha for the columns after the first m."""
        self._lib.log_q_columns(out.data_ptr(), cols.data_ptr(), cols.shape[0], m,
                                log_support.data_ptr(), alpha)

    def count_vs_target(self, scores: torch.Tensor, target_scores: torch.Tensor,
                        greater: torch.Tensor, equal: torch.Tensor) -> None:
        """greater[i] += #{scores[i] > t[i]}, equal[i] += #{scores[i] == t[i]} for an (M, K)
        float32 block (rows may be strided), t (M,) float32, counts (M,) int64."""
        m, n = scores.shape
        self._lib.count_vs_target(scores.data_ptr(), m, n, scores.stride(0),
                                  target_scores.data_ptr(), greater.data_ptr(),
                                  equal.data_ptr())


def kernels() -> Kernels | None:
    """The compiled kernels, building them on first call; None when unavailable or disabled
    (``GRU4REC_NATIVE=0``)."""
    global _loaded, _tried
    if os.environ.get("GRU4REC_NATIVE", "1") == "0":
        return None
    if not _tried:
        _tried = True
        path = _build()
        if path is not None:
            try:
                _loaded = Kernels(ctypes.CDLL(str(path)))
            except OSError as exc:
                log.warning("could not load the CPU kernels (%s): using pure PyTorch", exc)
    return _loaded
