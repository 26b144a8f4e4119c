"""Validation during training: measure a validation set after every epoch, keep the best
epoch's weights, and stop early when it has not improved for ``patience`` epochs.

::

    from gru4rec import GRU4Rec
    from gru4rec.validation import Validation, fit_validated
    model = GRU4Rec(loss="cross-entropy", n_epochs=30)
    history = fit_validated(model, "train.tsv", Validation("valid.tsv", patience=3))
    history.best_epoch, history.values      # the model now has the best epoch's weights

The validation set is read once (``sample``: a fixed random subset of its whole sessions
with at most that many events, for speed) and measured with :func:`gru4rec.evaluate`, the
metric ``metric``@``cutoff`` under the tie ``mode``. Off by default everywhere: a run
without a validation set trains every epoch, as the original does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from gru4rec.data.events import Events, subsample_sessions
from gru4rec.data.io import read_events
from gru4rec.errors import ConfigError
from gru4rec.evaluation import evaluate
from gru4rec.metrics import check_mode
from gru4rec.model import GRU4Rec
from gru4rec.training import EpochResult, StopTraining

__all__ = ["Validation", "ValidationHistory", "fit_validated"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Validation:
    """What to measure after each epoch, and when to stop.

    Attributes:
        data: the validation click log (path, DataFrame or Events).
        cutoff, metric: the measure, ``recall`` or ``mrr`` at ``cutoff`` (Recall@20).
        mode: tie handling (:data:`gru4rec.metrics.TIE_MODES`).
        sample: measure a fixed random subset of whole sessions with at most this many
            events (None: all of it).
        patience: stop after this many epochs without improvement (None: never stop early;
            the best epoch's weights are kept either way).
    """

    data: Any
    cutoff: int = 20
    metric: str = "recall"
    mode: str = "standard"
    sample: int | None = None
    patience: int | None = None

    @property
    def key(self) -> str:
        """The metric's name in the results: ``Recall@20`` or ``MRR@20``."""
        return f"{'Recall' if self.metric == 'recall' else 'MRR'}@{self.cutoff}"

    def check(self) -> None:
        """Raise ConfigError for a bad metric, mode, cutoff, sample or patience."""
        problems = []
        if self.metric not in ("recall", "mrr"):
            problems.append(f"metric must be recall or mrr, got {self.metric!r}")
        for name, value in (("cutoff", self.cutoff), ("sample", self.sample),
                            ("patience", self.patience)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if problems:
            raise ConfigError("; ".join(problems), problems)
        check_mode(self.mode)


@dataclass
class ValidationHistory:
    """The validation value after every epoch, and the epoch whose weights were kept."""

    key: str
    values: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    @property
    def best(self) -> float:
        """The best epoch's value."""
        return self.values[self.best_epoch - 1]


def fit_validated(model: GRU4Rec, data: Any, validation: Validation, *,
                  on_epoch: Callable[[EpochResult, float], None] | None = None,
                  **fit_args: Any) -> ValidationHistory:
    """``model.fit(data, **fit_args)`` measuring ``validation`` after every epoch; returns
    the history. ``on_epoch`` gets each epoch's result and validation value.

    The model ends with the weights of its best epoch (the first one reaching the highest
    value). When that is not the last epoch, its optimiser state (which belongs to the last
    epoch) is dropped: ``optimizer_state_`` is None and a retraining starts it afresh.

    Raises:
        ConfigError: bad validation options, a sequence-aware model
            (``session_boundary=carry``, whose user states follow the last epoch), or
            ``retrain=True``.
        DataError: the validation data cannot be read or leaves no prediction.
        and whatever ``model.fit`` raises.
    """
    validation.check()
    if model.config.session_boundary == "carry":
        raise ConfigError("validation during training is not supported with "
                          "session_boundary=carry")
    if fit_args.get("retrain"):
        raise ConfigError("validation during retraining is not supported (the model being "
                          "retrained is swapped in only at the end)")
    keys = {k: fit_args[k] for k in ("session_key", "item_key", "time_key") if k in fit_args}
    valid: Events = subsample_sessions(read_events(validation.data, **keys),
                                       validation.sample)
    history = ValidationHistory(validation.key)
    best: dict[str, torch.Tensor] = {}

    def after_epoch(result: EpochResult) -> None:
        value = evaluate(model, valid, cutoffs=[validation.cutoff], mode=validation.mode,
                         seed=model.seed)[validation.key]
        history.values.append(value)
        if history.best_epoch == 0 or value > history.best:
            history.best_epoch = len(history.values)
            best.clear()  # the best weights so far, on the training device
            best.update({n: p.detach().clone() for n, p in model.net_.params.items()})
        if on_epoch is not None:
            on_epoch(result, value)
        if validation.patience is not None and \
                len(history.values) - history.best_epoch >= validation.patience:
            history.stopped_early = True
            raise StopTraining

    model.fit(data, on_epoch=after_epoch, **fit_args)
    if history.best_epoch and history.best_epoch < len(history.values):
        with torch.no_grad():
            for name, p in model.net_.params.items():
                p.copy_(best[name])
        model.optimizer_state_ = None
        log.info("kept the weights of epoch %d (%s %.6f)", history.best_epoch, history.key,
                 history.best)
    return history
