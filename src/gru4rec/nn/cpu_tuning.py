"""Process-level CPU settings that make GRU4Rec's many small tensor ops fast."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["tune_malloc"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_done = False


def tune_malloc() -> bool:
    """Keep freed tensor memory in the heap instead of handing it back to the OS (glibc).

    A training step allocates dozens of (M, N) temporaries of a few hundred KB. With glibc's
    defaults each such buffer is mmap'ed or trimmed and then page-faulted in again on the next
    step, which made element-wise ops 3-10x slower than their arithmetic. Raising the mmap and
    trim thresholds lets the allocator reuse the same pages. Returns True when applied.
    """
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
              and libc.mallopt(_M_TOP_PAD, 64 << 20) == 1)
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        ok = False
    _done = ok
    log.debug("malloc tuning %s", "applied" if ok else "not available")
    return ok
