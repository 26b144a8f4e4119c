"""Shared fixtures: the real-data folder, the cpu/cuda device, and a synthetic successor log."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gru4rec.data.events import Events
from gru4rec.data.sessions import ItemIndex
from gru4rec.model import GRU4Rec
from gru4rec.nn.network import Network

# Tiny tensors: one thread avoids oversubscription when other processes share the cores.
torch.set_num_threads(int(os.environ.get("GRU4REC_TEST_THREADS", "1")))

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "yoochoose100k"


def require_realdata(path: Path = DATA_DIR) -> Path:
    """Return ``path`` if it is a folder; skip with a reason, or fail when ``CI`` is set."""
    if path.is_dir():
        return path
    message = f"real data folder {path} is absent (put the yoochoose100k sample there)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; it is required when the CI environment variable is set")
    pytest.skip(message)


@pytest.fixture
def data_dir() -> Path:
    """The yoochoose100k sample folder (not checked: call ``require_realdata`` to check)."""
    return DATA_DIR


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest) -> str:
    """Every test using this runs on CPU, and on CUDA when a GPU is present."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    return request.param


def make_successor_events(n_items: int = 50, n_sessions: int = 400, length: int = 6,
                          seed: int = 0) -> Events:
    """Sessions of ``length`` events where item i is always followed by item (i + 1) % n_items.

    Sessions start at random items; item ids are the ints 0..n_items-1; times increase
    within a session and sessions start in id order.
    """
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n_items, size=n_sessions)
    items = (first[:, None] + np.arange(length)[None, :]) % n_items
    session = np.repeat(np.arange(n_sessions, dtype=np.int64), length)
    time = (np.arange(n_sessions)[:, None] * 100.0 + np.arange(length)[None, :]).ravel()
    return Events(session=session, item=items.ravel().astype(np.int64),
                  time=time.astype(np.float64))


@pytest.fixture(scope="session")
def successor_events() -> Callable[..., Events]:
    """Factory: ``successor_events(n_items=50, n_sessions=400, length=6, seed=0)``."""
    return make_successor_events


@pytest.fixture(scope="session")
def successor_train() -> Events:
    """Training log of the successor rule: 50 items, 300 sessions of 6 events."""
    return make_successor_events(n_items=50, n_sessions=300, length=6, seed=0)


@pytest.fixture(scope="session")
def successor_test() -> Events:
    """Test log of the successor rule: 100 sessions of 6 events (500 predictions)."""
    return make_successor_events(n_items=50, n_sessions=100, length=6, seed=1)


@pytest.fixture(scope="session")
def synthetic_sessions() -> tuple:
    """(sessions, support, n_items) of a small synthetic log: 300 items, 500 sessions."""
    from gru4rec.data.sessions import ItemIndex, group_sessions
    from gru4rec.data.synthetic import make_sessions

    events = make_sessions(n_items=300, n_sessions=500, mean_length=5.0, seed=0)
    index = ItemIndex.from_items(events.item)
    sessions, _ = group_sessions(events, index)
    return sessions, np.bincount(sessions.items, minlength=len(index)), len(index)


# ----------------------------------------------------------------------------- hand-set models

MODES = {
    "onehot": {"constrained_embedding": False, "embedding": 0},
    "separate": {"constrained_embedding": False, "embedding": 8},
    "constrained": {"constrained_embedding": True},
}


def _make_model(n_items: int = 30, layers: tuple[int, ...] = (12, 10), seed: int = 0,
               ids: Any = None, **params: Any) -> GRU4Rec:
    """A randomly initialised model (random output biases too), as if loaded."""
    model = GRU4Rec(device="cpu", layers=list(layers), **params)
    net = Network.initialize(n_items, model.config, torch.Generator().manual_seed(seed),
                             torch.device("cpu"))
    net.params["Wyb"][:, -1] = torch.randn(n_items, generator=torch.Generator().manual_seed(1))
    model.net_ = net
    model.item_index_ = ItemIndex(np.arange(100, 100 + n_items) if ids is None
                                  else np.asarray(ids))
    model.item_support_ = np.ones(n_items, dtype=np.int64)
    return model


def _bias_model(n_items: int = 6) -> GRU4Rec:
    """Scores are the output biases only (Wy = 0): item 'i0' > 'i1' > ... whatever the state."""
    model = _make_model(n_items, layers=(4,), ids=[f"i{j}" for j in range(n_items)],
                       constrained_embedding=False, embedding=0)
    wyb = model.net_.params["Wyb"]
    wyb.zero_()
    wyb[:, -1] = torch.arange(n_items, 0, -1, dtype=torch.float32)  # i0: n, i1: n-1, ...
    return model



@pytest.fixture(scope="session")
def make_model() -> Callable[..., GRU4Rec]:
    """Factory: a randomly initialised model as if loaded (random output biases), item ids
    100..100+n_items-1 unless ``ids`` is given: ``make_model(n_items, layers, seed, ids,
    **hyperparameters)``."""
    return _make_model


@pytest.fixture(scope="session")
def bias_model() -> Callable[..., GRU4Rec]:
    """Factory: a model whose scores are its output biases only, ids 'i0' > 'i1' > ..."""
    return _bias_model
