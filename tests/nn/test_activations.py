"""Final and hidden activations (docs/algorithm.md §3, §5) against float64 formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gru4rec.nn.activations import activation


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for j, row in enumerate(x):
        top = max(row)
        e = [math.exp(v - top) for v in row]
        out[j] = [v / sum(e) for v in e]
    return out


def _elementwise(f):
    return lambda x: np.vectorize(f)(x)


REFERENCES = {
    "softmax": _softmax_rows,
    "softmax_logit": lambda x: x,
    "linear": lambda x: x,
    "relu": _elementwise(lambda v: max(v, 0.0)),
    "tanh": _elementwise(math.tanh),
    "leaky-0.1": _elementwise(lambda v: v if v > 0 else 0.1 * v),
    "elu-0.5": _elementwise(lambda v: v if v > 0 else 0.5 * (math.exp(v) - 1)),
    "elu-1.0": _elementwise(lambda v: v if v > 0 else math.exp(v) - 1),
    "selu-1.0507-1.67326": _elementwise(
        lambda v: 1.0507 * (v if v > 0 else 1.67326 * (math.exp(v) - 1))),
}


@pytest.mark.parametrize("spec", list(REFERENCES))
def test_activation_matches_its_formula(spec: str) -> None:
    x = np.random.default_rng(0).normal(0, 2, size=(4, 7))
    x[0, :3] = [0.0, -1e-9, 1e-9]  # around the kink
    got = activation(spec)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, REFERENCES[spec](x), rtol=1e-12, atol=1e-15)


def test_softmax_is_over_each_row() -> None:
    x = torch.randn(3, 5, dtype=torch.float64)
    np.testing.assert_allclose(activation("softmax")(x).sum(1).numpy(), np.ones(3))
