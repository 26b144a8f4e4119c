"""gru4rec: GRU4Rec session-based recommendations, faithful to the original and fast.

Public API::

    from gru4rec import GRU4Rec, GRU4RecConfig, evaluate
    model = GRU4Rec(loss="bpr-max", layers=[100]).fit("train.tsv")
    print(evaluate(model, "test.tsv", cutoffs=(5, 20)))
    model.save("model.pt"); model = GRU4Rec.load("model.pt")
    items, scores = model.recommend([[item_a, item_b]], k=20)
"""

from __future__ import annotations

__version__ = "0.1.0"

from gru4rec.config import GRU4RecConfig
from gru4rec.errors import (
    ConfigError,
    DataError,
    GRU4RecError,
    ModelFileError,
    NotFittedError,
    TrainingDivergedError,
)

_LAZY = {"EvalResult": "gru4rec.evaluation", "evaluate": "gru4rec.evaluation",
         "GRU4Rec": "gru4rec.model"}


def __getattr__(name: str) -> object:
    """Import the torch-based parts on first use, so ``import gru4rec`` stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gru4rec' has no attribute {name!r}")

__all__ = [
    "ConfigError",
    "DataError",
    "EvalResult",
    "GRU4Rec",
    "GRU4RecConfig",
    "GRU4RecError",
    "ModelFileError",
    "NotFittedError",
    "TrainingDivergedError",
    "__version__",
    "evaluate",
]
