"""Activation functions named as in the original's ``final_act`` / ``hidden_act`` parameters
(spellings validated by :func:`gru4rec.config.canonical_activation`).

Spellings (X, Y are numbers):
    ``linear``, ``relu``, ``tanh``, ``leaky-X`` (slope X below zero), ``elu-X`` (ELU with
    alpha X), ``selu-X-Y`` (X * (x if x > 0 else Y * (exp(x) - 1)): scale X, alpha Y), and for
    the output only ``softmax`` (over a row of scores) and ``softmax_logit`` (the scores
    themselves: the ``xe_logit`` loss applies the softmax in log space).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gru4rec.config import canonical_activation

__all__ = ["activation"]

Activation = Callable[[torch.Tensor], torch.Tensor]


def activation(spec: str) -> Activation:
    """The function of a (canonical or not) activation spelling; softmax is over dim 1."""
    name, *args = canonical_activation(spec, final=True).split("-")
    x_param = [float(a) for a in args]
    if name == "linear" or name == "softmax_logit":
        return lambda x: x
    if name == "softmax":
        return lambda x: torch.softmax(x, dim=1)
    if name == "relu":
        return torch.relu
    if name == "tanh":
        return torch.tanh
    if name == "leaky":
        return lambda x: F.leaky_relu(x, x_param[0])
    if name == "elu":
        return lambda x: F.elu(x, alpha=x_param[0])
    scale, alpha = x_param  # selu-X-Y
    return lambda x: scale * F.elu(x, alpha=alpha)
