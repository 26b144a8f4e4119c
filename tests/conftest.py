"""Shared fixtures: the real-data folder, the cpu/cuda device, and a synthetic successor log."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from gru4rec.data.events import Events

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
