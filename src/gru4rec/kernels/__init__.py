"""Fused CPU kernels (kernels.c), compiled when gru4rec is installed and called through
ctypes.

The install (``pip install .`` or ``pip install -e .``, see setup.py) builds plain shared
libraries next to this file: on x86-64 a ``generic``, an ``avx2`` and an ``avx512``
variant, each with and without OpenMP threads. At run time :func:`load_kernels` loads the
best variant the CPU supports, or the one named by ``GRU4REC_KERNELS`` (falling back, with
a warning, when the CPU lacks it), and the OpenMP build only where PyTorch runs GNU OpenMP
(the library then uses PyTorch's own thread pool). Without the libraries (no compiler at
install time, or kernels.c changed since), or with ``GRU4REC_NATIVE=0``, it returns None
and the equivalent PyTorch code runs instead (same results up to float rounding, slower);
:func:`kernels_info` tells which it is and why.

The torch-free build logic is :mod:`gru4rec.kernels.build`; the names below are imported
on first use, so importing it needs no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - the real imports are lazy (see __getattr__)
    from gru4rec.kernels.loader import KernelsInfo, kernels_info, load_kernels
    from gru4rec.kernels.wrappers import Kernels

__all__ = ["Kernels", "KernelsInfo", "kernels_info", "load_kernels"]

_HOMES = {"Kernels": "gru4rec.kernels.wrappers", "KernelsInfo": "gru4rec.kernels.loader",
          "kernels_info": "gru4rec.kernels.loader", "load_kernels": "gru4rec.kernels.loader"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
