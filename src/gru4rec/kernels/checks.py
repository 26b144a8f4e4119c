"""Argument checks of the kernel wrappers: what must hold before a tensor's pointer is
handed to C, where a wrong dtype, device, layout or size would read or write the wrong
memory instead of raising.

The checks run on every training step, so the passing path compares attributes only (no
tensor op, no allocation); the message is built only on failure. :func:`need_array` is
the same check for the numpy arrays of the kernels that take them (the session kNN).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import torch

__all__ = ["ANY", "CONTIGUOUS", "ROWS", "fail", "need", "need_array"]

CONTIGUOUS: Final = "contiguous"  # row-major, no gaps
ROWS: Final = "rows"  # rows may be strided, each row's values contiguous
ANY: Final = "any"  # any strides (the wrapper copies)

# (before, after) "CPU <dtype> tensor" in messages
_LAYOUT_TEXT = {CONTIGUOUS: ("contiguous ", ""), ROWS: ("", " with unit stride along its last dim"),
                ANY: ("", "")}


def _shape_ok(got: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    if got == want:
        return True
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):  # a plain loop: cheaper than all() here
        if w is not None and g != w:
            return False
    return True


def _layout_ok(t: torch.Tensor, layout: str) -> bool:
    if layout is ROWS:
        return t.dim() == 0 or t.stride(-1) == 1 or t.shape[-1] <= 1
    return t.layout == torch.strided  # ANY (CONTIGUOUS is tested inline)


def _shape_text(shape: tuple[int | None, ...]) -> str:
    inner = ", ".join("*" if s is None else str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _describe(t: object) -> str:
    if isinstance(t, np.ndarray):
        layout = "contiguous" if t.flags.c_contiguous else "non-contiguous"
        aligned = "" if t.flags.aligned else "unaligned "
        kind = t.dtype.name if t.dtype.isnative else f"{t.dtype.str} (non-native)"
        return f"a {aligned}{layout} {kind} array of shape {_shape_text(t.shape)}"
    if not isinstance(t, torch.Tensor):
        return "None" if t is None else f"a {type(t).__name__}"
    if t.layout != torch.strided:
        return f"a {t.layout} tensor"
    layout = "contiguous" if t.is_contiguous() else "non-contiguous"
    dtype = str(t.dtype).removeprefix("torch.")
    text = f"a {layout} {t.device.type} {dtype} tensor of shape {_shape_text(tuple(t.shape))}"
    return text if t.is_contiguous() else f"{text}, strides {tuple(t.stride())}"


def fail(fn: str, arg: str, expected: str, got: object) -> ValueError:
    """The error of wrapper ``fn`` for argument ``arg``: what was expected, what was given
    (a tensor or other object is described, a string used as is)."""
    given = got if isinstance(got, str) else _describe(got)
    return ValueError(f"{fn}: {arg} must be {expected}; got {given}")


def need(fn: str, arg: str, t: object, dtype: torch.dtype,
         shape: tuple[int | None, ...] | None, dims: str = "", layout: str = CONTIGUOUS,
         *, optional: bool = False) -> None:
    """Raise ValueError unless ``t`` is a CPU tensor of ``dtype`` with ``layout`` and
    ``shape`` (None entries: any size; ``shape`` None: any shape); ``dims`` names the
    dimensions in the message, e.g. ``"(M, 2H)"``. ``optional``: None passes too."""
    if t is None and optional:
        return
    try:  # the passing path: attribute reads only (~0.5 us); sparse layouts raise here
        if (isinstance(t, torch.Tensor) and t.dtype is dtype and t.is_cpu
                and (shape is None or _shape_ok(t.shape, shape))
                and (t.is_contiguous() if layout is CONTIGUOUS else _layout_ok(t, layout))):
            return
    except RuntimeError:
        pass
    before, after = _LAYOUT_TEXT[layout]
    what = f"a {before}CPU {str(dtype).removeprefix('torch.')} tensor"
    if shape is not None:
        what += f" of shape {dims + ' = ' if dims else ''}{_shape_text(shape)}"
    what += after
    if optional:
        what += " or None"
    raise fail(fn, arg, what, t)


def need_array(fn: str, arg: str, a: object, dtypes: tuple[type[np.generic], ...],
               shape: tuple[int | None, ...], dims: str = "", *, optional: bool = False
               ) -> None:
    """Raise ValueError unless ``a`` is an aligned, C-contiguous numpy array of one of
    ``dtypes`` (native byte order) and of ``shape`` (None entries: any size); ``dims``
    names the dimensions in the message. ``optional``: None passes too."""
    if a is None and optional:
        return
    if (isinstance(a, np.ndarray) and a.dtype.type in dtypes and a.dtype.isnative
            and a.flags.c_contiguous and a.flags.aligned and _shape_ok(a.shape, shape)):
        return
    kinds = " or ".join(np.dtype(d).name for d in dtypes)
    what = (f"an aligned C-contiguous {kinds} array (native byte order) of shape "
            f"{dims + ' = ' if dims else ''}{_shape_text(shape)}")
    raise fail(fn, arg, what + (" or None" if optional else ""), a)
