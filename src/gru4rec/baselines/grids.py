"""Small search grids for the baselines, used by ``gru4rec compare --tune N``: the values
session-rec's optimisation searched (BASELINES.md §4), thinned to a few per parameter."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

__all__ = ["GRIDS", "grid_points"]

_WEIGHTS = ["div", "quadratic", "log", "same", "linear"]
_KNN = {"k": [50, 100, 500, 1000, 1500], "sample_size": [500, 1000, 2500, 5000, 10000]}

GRIDS: dict[str, dict[str, list[Any]]] = {
    "random": {},
    "pop": {"top_n": [20, 100, None]},
    "spop": {"top_n": [20, 100, None]},
    "itemknn": {"n_sims": [50, 100, 200], "lmbd": [0, 20, 50], "alpha": [0.25, 0.5, 0.75]},
    "bprmf": {"n_factors": [50, 100], "learning_rate": [0.01, 0.05, 0.1],
              "lambda_item": [0.0, 0.01], "lambda_session": [0.0, 0.01]},
    "sknn": {**_KNN, "similarity": ["jaccard", "cosine"]},
    "vsknn": {**_KNN, "weighting": _WEIGHTS, "weighting_score": _WEIGHTS,
              "idf_weighting": [False, 1, 2, 5, 10]},
    "sr": {"steps": [2, 3, 4, 5, 8, 10, 12, 15, 20, 25, 30], "weighting": _WEIGHTS},
    "ar": {"pruning": [0, 10, 20, 50]},
    "markov": {"pruning": [0, 10, 20, 50]},
}


def grid_points(name: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Up to ``n`` distinct parameter sets from the grid of ``name``: all of them when the
    grid is that small, else ``n`` drawn without replacement (seeded); the defaults (the
    empty set) always come first."""
    grid = GRIDS.get(name, {})
    names = list(grid)
    points = [dict(zip(names, values, strict=True))
              for values in itertools.product(*(grid[k] for k in names))]
    if len(points) + 1 > n:
        picked = np.random.default_rng(seed).choice(len(points), size=max(n - 1, 0),
                                                     replace=False)
        points = [points[i] for i in sorted(picked.tolist())]
    return [{}, *points][:n]
