"""Where the arithmetic runs: compiled CPU kernels or PyTorch ops, chosen in one place.

:func:`select_backend` is the only code that asks whether the compiled kernels exist. It
returns a :class:`TorchOps` (any device) or, on the CPU with the kernels available, a
:class:`CompiledOps` (same methods, same results up to float rounding). Training steps, the
optimiser, the negative sampler, evaluation and serving take the object they are given.
"""

from __future__ import annotations

import torch

from gru4rec.backend.compiled import CompiledOps
from gru4rec.backend.torch_ops import TorchOps
from gru4rec.kernels import load_kernels

__all__ = ["CompiledOps", "TorchOps", "select_backend"]


def select_backend(device: torch.device | str = "cpu", *, compiled: bool = True) -> TorchOps:
    """The backend for work on ``device``: the compiled kernels on the CPU when they are
    available and ``compiled`` is true (``GRU4REC_NATIVE=0`` turns them off), else PyTorch
    ops. Each call returns a new object (backends keep per-user scratch buffers)."""
    if compiled and torch.device(device).type == "cpu":
        k = load_kernels()
        if k is not None:
            return CompiledOps(k)
    return TorchOps()
