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
# -fno-math-errno: lets sqrtf vectorise; -fopenmp-simd: honours the simd pragmas without
# linking an OpenMP runtime (PyTorch brings its own; two runtimes would fight over cores).
_FLAGS = ["-O3", "-fPIC", "-shared", "-std=c11", "-ffp-contract=off", "-fno-math-errno",
          "-fopenmp-simd"]
_ARCH_FLAGS = ["-march=native"]

_VOID, _I64, _F32, _F64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_double
_SIGNATURES = {
    "bpr_max_rows": (_F64, [_VOID, _I64, _I64, _F32, _F32, _F32, _VOID, _VOID]),
    "xe_rows": (_F64, [_VOID, _I64, _I64, _F32, _VOID, _F32]),
    "adagrad_dense": (None, [_VOID, _VOID, _VOID, _VOID, _I64, _F32, _F32, _F32]),
    "rows_accumulate": (_I64, [_VOID, _VOID, _VOID, _I64, _I64, _VOID, _I64, _VOID, _I64,
                               _I64]),
    "rows_apply": (None, [_VOID, _VOID, _VOID, _I64, _VOID, _VOID, _VOID, _I64, _F32, _F32,
                          _F32]),
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


def _build() -> Path | None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") \
        or shutil.which("clang")
    if cc is None:
        log.warning("no C compiler found: training runs on the slower pure-PyTorch CPU path "
                    "(install gcc or clang to enable the fused kernels)")
        return None
    source = _SOURCE.read_bytes()
    for flags in (_FLAGS + _ARCH_FLAGS, _FLAGS):
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

    def bpr_max_(self, r: torch.Tensor, batch_size: int, bpreg: float, elu_param: float,
                 e: torch.Tensor, sg: torch.Tensor) -> float:
        """(M, N) raw scores -> d loss / d r in place; returns the summed row losses.
        e, sg: scratch of at least N floats."""
        m, n = r.shape
        return self._lib.bpr_max_rows(r.data_ptr(), m, n, 1.0 / batch_size, bpreg,
                                      elu_param, e.data_ptr(), sg.data_ptr())

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
