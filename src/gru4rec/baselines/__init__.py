"""The models GRU4Rec is compared with, on the same evaluator (``docs``: BASELINES.md).

The five of the original GRU4Rec repository and the five strongest simple models of the
session-rec framework, each an estimator with GRU4Rec's manners (``fit -> self``,
``recommend``, ``save`` / ``load``) that :func:`gru4rec.evaluate` measures like GRU4Rec:

========  ==========================================================================
name      model
========  ==========================================================================
random    :class:`~gru4rec.baselines.simple.Random`: uniform random scores
pop       :class:`~gru4rec.baselines.simple.Pop`: the most popular items
spop      :class:`~gru4rec.baselines.simple.SPop`: items of the session, then popular
itemknn   :class:`~gru4rec.baselines.itemknn.ItemKNN`: items co-occurring with the last
bprmf     :class:`~gru4rec.baselines.bprmf.BPRMF`: matrix factorisation, session = mean
sknn      :class:`~gru4rec.baselines.sknn.SKNN`: session-based kNN
vsknn     :class:`~gru4rec.baselines.vsknn.VSKNN`: session kNN weighted by position
sr        :class:`~gru4rec.baselines.rules.SR`: sequential rules
ar        :class:`~gru4rec.baselines.rules.AR`: association rules
markov    :class:`~gru4rec.baselines.rules.Markov`: first-order transitions
========  ==========================================================================

Usage::

    from gru4rec.baselines import make_baseline
    model = make_baseline("vsknn", {"k": 100, "sample_size": 500}).fit("train.tsv")
    print(gru4rec.evaluate(model, "test.tsv", mode="conservative"))
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from gru4rec.baselines.base import Baseline
from gru4rec.errors import ConfigError

__all__ = ["MODELS", "Baseline", "baseline_class", "make_baseline"]

# name -> (module, class); imported on first use
MODELS: dict[str, tuple[str, str]] = {
    "random": ("gru4rec.baselines.simple", "Random"),
    "pop": ("gru4rec.baselines.simple", "Pop"),
    "spop": ("gru4rec.baselines.simple", "SPop"),
    "itemknn": ("gru4rec.baselines.itemknn", "ItemKNN"),
    "bprmf": ("gru4rec.baselines.bprmf", "BPRMF"),
    "sknn": ("gru4rec.baselines.sknn", "SKNN"),
    "vsknn": ("gru4rec.baselines.vsknn", "VSKNN"),
    "sr": ("gru4rec.baselines.rules", "SR"),
    "ar": ("gru4rec.baselines.rules", "AR"),
    "markov": ("gru4rec.baselines.rules", "Markov"),
}


def baseline_class(name: str) -> type[Baseline]:
    """The class of the baseline called ``name`` (see :data:`MODELS`).

    Raises:
        ConfigError: no baseline has that name (the message lists them).
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; the models are gru4rec, "
                          f"{', '.join(MODELS)}")
    module, cls = MODELS[name]
    found: type[Baseline] = getattr(importlib.import_module(module), cls)
    return found


def make_baseline(name: str, params: Mapping[str, Any] | None = None, *,
                  seed: int = 42) -> Baseline:
    """A new, untrained baseline ``name`` with ``params`` (values or their text).

    Raises:
        ConfigError: an unknown model, or unknown or bad parameters (all listed).
    """
    return baseline_class(name)(seed=seed, **dict(params or {}))
