"""Hyperparameter optimisation with Optuna (the ``tune`` extra, imported lazily).

:mod:`~gru4rec.tuning.space` reads and checks parameter spaces (the original ``paropt.py``
format, or TOML); :func:`tune` (:mod:`~gru4rec.tuning.study`) runs a stored, prunable study
of them, shared by any number of workers::

    from gru4rec.tuning import tune
    study = tune("train_tr.tsv", "train_valid.tsv", "configs/spaces/gru4rec_bprmax_space.json",
                 fixed={"loss": "bpr-max", "n_epochs": 3}, n_trials=30,
                 storage="sqlite:///study.db")
    study.best_params
"""

from gru4rec.tuning.space import Param, read_space, space_from
from gru4rec.tuning.study import (
    PRUNE_EARLY,
    PRUNERS,
    EpochDone,
    TrialDone,
    TrialProgress,
    require_optuna,
    tune,
)

__all__ = ["PRUNERS", "PRUNE_EARLY", "EpochDone", "Param", "TrialDone", "TrialProgress",
           "read_space", "require_optuna", "space_from", "tune"]
