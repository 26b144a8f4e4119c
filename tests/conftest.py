"""Shared fixtures: the real-data folder, the cpu/cuda device, a synthetic successor log,
hand-set and trained models, and a hand-made raw yoochoose-clicks.dat."""

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


@pytest.fixture(name="require_realdata", scope="session")
def _require_realdata_fixture() -> Callable[..., Path]:
    """``require_realdata(path=DATA_DIR)`` as a fixture, for test files in any folder.

    Test files never ``from conftest import ...``: the sub-folders have conftest.py files of
    their own, all imported under the module name ``conftest``, so that import is ambiguous.
    """
    return require_realdata


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


# ----------------------------------------------------------------------------- trained models

# the default 10M-id negative-sample store costs ~1 s per fit
SMALL = {"layers": [32], "batch_size": 16, "n_sample": 8, "learning_rate": 0.2,
         "sample_store_size": 100_000}


def _fit_successor(events: Events, device: str = "cpu", seed: int = 42,
                   **params: Any) -> GRU4Rec:
    kwargs = {**SMALL, "n_epochs": 6, **params}
    return GRU4Rec(device=device, seed=seed, **kwargs).fit(events)


def _events_of(sessions: list[list[Any]]) -> Events:
    """Events from explicit sessions (ids 0, 1, ...; times increase in list order)."""
    session = np.repeat(np.arange(len(sessions), dtype=np.int64), [len(s) for s in sessions])
    items = [i for s in sessions for i in s]
    item = (np.asarray(items, dtype=object) if any(isinstance(i, str) for i in items)
            else np.asarray(items, dtype=np.int64))
    return Events(session=session, item=item, time=np.arange(len(items), dtype=np.float64))


@pytest.fixture
def small_params() -> dict[str, Any]:
    """Hyperparameters of a small, fast model (32 units, 8 negative samples, a small
    negative-sample store): ``GRU4Rec(device="cpu", **small_params)``."""
    return {**SMALL, "layers": list(SMALL["layers"])}


@pytest.fixture(scope="session")
def fit_successor() -> Callable[..., GRU4Rec]:
    """Factory: ``fit_successor(events, device="cpu", seed=42, **hyperparameters)``, a small
    model trained for 6 epochs (``small_params`` unless overridden)."""
    return _fit_successor


@pytest.fixture(scope="session")
def fitted(successor_train: Events) -> GRU4Rec:
    """A small model trained on ``successor_train`` (it has learnt the successor rule).

    Shared by every test that uses it: do not change it.
    """
    return _fit_successor(successor_train)


@pytest.fixture(scope="session")
def events_of() -> Callable[[list[list[Any]]], Events]:
    """Factory: ``events_of([[item, ...], ...])``, one session per list (ids 0, 1, ...; times
    increase in list order; str item ids if any id is a str)."""
    return _events_of


# ----------------------------------------------------------------------------- raw datasets

# Items: A=1001 B=1002 C=1003 D=1004 E=1005 X=1008 R=1009.
# S3 loses R and becomes length 1 (dropped by the last step); S4 is all R; S5 has length 1,
# and removing it leaves D with 4 events; C has exactly 5 events (kept); S10 starts before
# the test cut and ends after it (test: the cut is on the last event); X appears only in test
# (dropped there, so S12 becomes length 1 and S13 empty); S8 straddles the validation cut;
# S9's E is not in train_tr, which leaves S9 with one event. Consecutive repeats stay (S1).
RSC15_CLICKS = """\
1,2014-04-01T10:00:00.000Z,1001,0
1,2014-04-01T10:01:00.000Z,1001,0
1,2014-04-01T10:02:00.000Z,1002,S
2,2014-04-02T10:00:00.000Z,1002,0
2,2014-04-02T10:01:00.000Z,1003,12
2,2014-04-02T10:02:00.000Z,1001,0
3,2014-04-03T10:00:00.000Z,1003,0
3,2014-04-03T10:01:00.000Z,1009,0
4,2014-04-03T11:00:00.000Z,1009,0
4,2014-04-03T11:01:00.000Z,1009,0
4,2014-04-03T11:02:00.000Z,1009,0
5,2014-04-04T10:00:00.000Z,1004,0
6,2014-04-05T10:00:00.000Z,1004,0
6,2014-04-05T10:01:00.000Z,1001,0
6,2014-04-05T10:02:00.000Z,1004,0
6,2014-04-05T10:03:00.000Z,1002,0
7,2014-04-05T11:00:00.000Z,1004,0
7,2014-04-05T11:01:00.000Z,1004,0
7,2014-04-05T11:02:00.000Z,1003,0
8,2014-04-05T19:00:00.000Z,1002,0
8,2014-04-06T09:00:00.000Z,1003,0
9,2014-04-06T20:00:00.000Z,1001,0
9,2014-04-06T20:01:00.000Z,1005,0
10,2014-04-07T11:00:00.000Z,1001,0
10,2014-04-07T11:30:00.000Z,1002,0
10,2014-04-07T13:00:00.000Z,1003,0
11,2014-04-08T10:00:00.000Z,1005,0
11,2014-04-08T10:01:00.000Z,1005,0
11,2014-04-08T10:02:00.000Z,1001,0
12,2014-04-08T11:00:00.000Z,1008,0
12,2014-04-08T11:01:00.000Z,1002,0
13,2014-04-08T11:30:00.000Z,1008,0
13,2014-04-08T11:31:00.000Z,1008,0
13,2014-04-08T11:32:00.000Z,1008,0
13,2014-04-08T11:33:00.000Z,1008,0
14,2014-04-08T12:00:00.000Z,1005,0
14,2014-04-08T12:00:30.123Z,1005,0
"""


@pytest.fixture(scope="session")
def rsc15_clicks() -> str:
    """A hand-made yoochoose-clicks.dat (37 events, 14 sessions, 7 items) with known answers
    for the rsc15 recipe (tests/data/datasets/test_rsc15.py); the CLI tests use it too."""
    return RSC15_CLICKS
