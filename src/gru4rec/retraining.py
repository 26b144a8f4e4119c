"""Continuing a trained model on new events: the grown item index, network and supports,
and which hyperparameters may change between trainings.

New items get rows at the end of every item table, drawn as for a fresh table of the grown
size (docs/algorithm.md §3), and fresh optimiser state (Adagrad: ``adagrad_init``); known
items keep their index, rows and state. Item supports (which drive negative sampling and
logQ) add the new events' counts to the old ones.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from gru4rec.config import GRU4RecConfig
from gru4rec.data.events import Events
from gru4rec.data.sessions import ItemIndex, SessionData, group_sessions
from gru4rec.errors import ConfigError, DataError
from gru4rec.nn.network import Network

__all__ = ["RETRAIN_PARAMS", "Grown", "check_retrain_config", "grow"]

#: Hyperparameters a retraining may change: they set how to train, not what the network
#: and the optimiser state are (shapes, activations, loss, optimiser, initialisation).
RETRAIN_PARAMS = frozenset({
    "n_epochs", "batch_size", "learning_rate", "momentum", "lmbd", "grad_cap",
    "dropout_p_embed", "dropout_p_hidden", "n_sample", "sample_alpha", "bpreg", "logq",
    "smoothing", "train_random_order", "time_sort"})


def check_retrain_config(trained: GRU4RecConfig, new: GRU4RecConfig) -> None:
    """Check that ``new`` differs from the config the model was trained with only in
    :data:`RETRAIN_PARAMS`.

    Raises:
        ConfigError: naming every other parameter that changed, with both values.
    """
    bad = [f"{f.name} ({getattr(trained, f.name)!r} -> {getattr(new, f.name)!r})"
           for f in fields(GRU4RecConfig)
           if f.name not in RETRAIN_PARAMS and getattr(trained, f.name) != getattr(new, f.name)]
    if bad:
        raise ConfigError("retraining keeps the model's network and optimiser, so these "
                          f"cannot change: {', '.join(bad)}; retrainable parameters are "
                          f"{', '.join(sorted(RETRAIN_PARAMS))} (train a new model instead)")


@dataclass(frozen=True)
class Grown:
    """What a retraining starts from.

    Attributes:
        net: the network with rows for the new items (old rows and dense weights equal).
        index: the old item index followed by the new items.
        sessions: the new events' sessions on that index.
        support: (n_items,) old support plus the new events' counts.
        n_new: number of items added.
    """

    net: Network
    index: ItemIndex
    sessions: SessionData
    support: np.ndarray
    n_new: int


def grow(net: Network, index: ItemIndex, support: np.ndarray, events: Events,
         config: GRU4RecConfig, generator: torch.Generator) -> Grown:
    """Extend a trained model's items with those of ``events`` and group its sessions.

    Raises:
        DataError: the new events' ids are strings for an integer index, or they have no
            session with 2 or more events (nothing to learn; the model is left as it was).
    """
    new_index, n_new = index.extended(events.item)
    sessions, _ = group_sessions(events, new_index, time_sort=config.time_sort)
    if sessions.n_examples() == 0:
        raise DataError("the new data has no session with 2 or more events, so there is "
                        "nothing to retrain on; the model is unchanged")
    counts = np.bincount(sessions.items, minlength=len(new_index))
    grown_support = counts + np.concatenate([support, np.zeros(n_new, dtype=support.dtype)])
    return Grown(net.with_new_items(n_new, generator), new_index, sessions,
                 grown_support.astype(np.int64), n_new)
