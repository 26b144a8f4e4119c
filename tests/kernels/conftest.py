"""Fixtures of the kernel tests: the loaded kernels, and a tiny training run in a child
process (to see what a user sees: exit code, warnings, tracebacks)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from gru4rec.kernels import Kernels, kernels_info, load_kernels

# A few lines that train a tiny model and recommend, through the public API.
TRAIN_TINY = """
import numpy as np
from gru4rec.kernels import kernels_info
import gru4rec
from gru4rec import GRU4Rec
from gru4rec.data.events import Events
rng = np.random.default_rng(0)
n, length = 200, 5
first = rng.integers(0, 30, size=n)
items = ((first[:, None] + np.arange(length)) % 30).ravel().astype(np.int64)
events = Events(session=np.repeat(np.arange(n, dtype=np.int64), length), item=items,
                time=np.tile(np.arange(length, dtype=np.float64), n))
model = GRU4Rec(device="cpu", layers=[16], batch_size=16, n_sample=32, n_epochs=1,
                sample_store_size=4096).fit(events)
model.recommend([[1, 2]], k=3)
print("module", gru4rec.__file__)
print("kernels", kernels_info().variant)
"""


def run_python(code: str, env: Mapping[str, str | None], cwd: Path | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter of this environment, with the variables of
    ``env`` set (None: removed)."""
    full = dict(os.environ)
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    return subprocess.run([sys.executable, "-c", code], env=full, cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def require_kernels() -> Kernels:
    """The loaded kernels; skip without them (switched off, or not built), fail under CI
    where the install must have built them."""
    kernels = load_kernels()
    if kernels is not None:
        return kernels
    info = kernels_info()
    if os.environ.get("GRU4REC_NATIVE") == "0":
        pytest.skip("the kernels are switched off (GRU4REC_NATIVE=0)")
    if os.environ.get("CI"):
        pytest.fail(f"the CPU kernels must be installed on the CI machine: {info.reason}")
    pytest.skip(f"no CPU kernels: {info.reason}")


@pytest.fixture(scope="module")
def k() -> Kernels:
    """The kernels the loader picks (``GRU4REC_KERNELS`` chooses the variant)."""
    return require_kernels()


@pytest.fixture(scope="session")
def train_tiny() -> str:
    """Python code that trains a tiny model and prints its module path and the variant."""
    return TRAIN_TINY


@pytest.fixture(scope="session")
def child() -> Callable[..., subprocess.CompletedProcess[str]]:
    """:func:`run_python`: ``child(code, env, cwd=None, timeout=120)``."""
    return run_python
