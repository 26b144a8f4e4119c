"""gru4rec: GRU4Rec session-based recommendations, faithful to the original and fast.

Usage::

    from gru4rec import GRU4Rec, GRU4RecConfig, evaluate
    model = GRU4Rec(loss="bpr-max", layers=[100]).fit("train.tsv")
    print(evaluate(model, "test.tsv", cutoffs=(5, 20)))
    model.save("model.pt"); model = GRU4Rec.load("model.pt")
    items, scores = model.recommend([[item_a, item_b]], k=20)

The public API is exactly ``__all__``:

- :class:`GRU4Rec`: the estimator (``fit``, ``recommend``, ``session_tracker``, ``save``,
  ``load``);
- :class:`GRU4RecConfig`: every hyperparameter, one frozen dataclass;
- :func:`evaluate` and its :class:`EvalResult`: Recall@k and MRR@k on test sessions;
- the errors, one hierarchy under :class:`GRU4RecError`: :class:`ConfigError`,
  :class:`DataError`, :class:`NotFittedError`, :class:`TrainingDivergedError`,
  :class:`ModelFileError`, :class:`StoreUnavailableError`;
- ``__version__``.

``import gru4rec`` is light: the torch-based names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from gru4rec.config import GRU4RecConfig
from gru4rec.errors import (
    ConfigError,
    DataError,
    GRU4RecError,
    ModelFileError,
    NotFittedError,
    StoreUnavailableError,
    TrainingDivergedError,
)

if TYPE_CHECKING:  # pragma: no cover - the real imports are lazy (see __getattr__)
    from gru4rec.evaluation import EvalResult, evaluate
    from gru4rec.model import GRU4Rec

__all__ = [
    "ConfigError",
    "DataError",
    "EvalResult",
    "GRU4Rec",
    "GRU4RecConfig",
    "GRU4RecError",
    "ModelFileError",
    "NotFittedError",
    "StoreUnavailableError",
    "TrainingDivergedError",
    "__version__",
    "evaluate",
]

_LAZY = {"EvalResult": "gru4rec.evaluation", "evaluate": "gru4rec.evaluation",
         "GRU4Rec": "gru4rec.model"}


def __getattr__(name: str) -> object:
    """Import the torch-based parts on first use, so ``import gru4rec`` stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gru4rec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
