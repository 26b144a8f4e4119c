"""The study: trials of a parameter space trained in this process, stored and pruned.

:func:`tune` trains every trial in this process on data read once, evaluates it on the
validation set, and with a pruner reports the metric after each epoch (and an eighth, a
quarter and half into the first) so that hopeless trials stop early. The study lives in
an Optuna storage: with an RDB URL (SQLite file, PostgreSQL, MySQL) it survives a crash
(rerun to continue) and several workers, on one machine or many, share it; together they
finish exactly ``n_trials`` trials.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from gru4rec.config import GRU4RecConfig
from gru4rec.data.events import Events, subsample_sessions
from gru4rec.data.io import read_events
from gru4rec.errors import ConfigError, TrainingDivergedError
from gru4rec.tuning.space import Param, read_space, space_from

if TYPE_CHECKING:
    import optuna

__all__ = ["GRACE_SECONDS", "HEARTBEAT_SECONDS", "PRUNERS", "PRUNE_EARLY", "EpochDone", "TrialDone",
           "TrialProgress", "require_optuna", "tune"]

log = logging.getLogger(__name__)
PRUNERS = ("median", "hyperband", "none")
# where the pruner also looks inside the first epoch, as fractions of it: a trial that is
# hopeless after a quarter of an epoch (diverged, or far behind) stops there
PRUNE_EARLY = (0.125, 0.25, 0.5)
# the step a pruning check reports to Optuna: epochs trained in thousandths (125, 250, ...)
STEPS_PER_EPOCH = 1000
# a worker killed mid-trial leaves it RUNNING; after this many seconds without a heartbeat
# another worker (or the rerun) marks it failed, and its slot is trained again
HEARTBEAT_SECONDS, GRACE_SECONDS = 5, 20


def require_optuna() -> Any:
    """The ``optuna`` module.

    Raises:
        ConfigError: optuna is not installed (the message gives the install line).
    """
    try:
        import optuna
    except ImportError:
        raise ConfigError('tuning needs optuna; install the tune extra: pip install '
                          '"gru4rec[tune]"') from None
    return optuna


@dataclass(frozen=True)
class TrialDone:
    """What a finished trial reports to ``on_trial``: its number, state (``COMPLETE``,
    ``PRUNED`` or ``FAIL``), value (``None`` unless complete), epochs trained (a fraction
    for a trial pruned inside its first epoch), how many
    trials of the study are finished, and the study's best (value, trial number) so far,
    over every worker."""

    number: int
    state: str
    value: float | None
    epochs: float
    finished: int
    params: dict[str, Any]
    error: str | None = None
    best: tuple[float, int] | None = None


@dataclass(frozen=True)
class EpochDone:
    """What ``on_epoch`` gets after each epoch of a trial, and at each early pruning point
    of its first epoch: the trial's number, the epochs trained (``1``, ``2``...; ``0.25``
    at the point a quarter into the first one) of ``n_epochs``, the metric on the pruning
    sample (``None`` without a pruner), how many trials of the study were finished and its
    best (value, trial number) when this one started, and the events of the pruning sample
    and of the whole validation set."""

    number: int
    epoch: float
    n_epochs: int
    value: float | None
    finished: int
    best: tuple[float, int] | None
    sample_events: int
    valid_events: int


@dataclass(frozen=True)
class TrialProgress:
    """What ``progress`` gets while a trial trains: the trial's number, its epoch (1-based)
    of ``n_epochs``, the steps done of the epoch's ``steps``, and how many trials of the
    study were finished and its best (value, trial number) when this one started."""

    number: int
    epoch: int
    n_epochs: int
    done: int
    steps: int
    finished: int
    best: tuple[float, int] | None


class _Surplus(Exception):
    """Other workers already started the study's last trials."""


def _make_pruner(optuna: Any, name: Any, n_epochs: int, early: Sequence[float]) -> Any:
    """The Optuna pruner of one of :data:`PRUNERS` (checked by :func:`tune`), or ``name``
    itself when it is a pruner object; its steps are epochs trained in
    :data:`STEPS_PER_EPOCH` ths, the first at ``early[0]`` (if any)."""
    if not isinstance(name, str):
        return name
    if name == "median":
        from gru4rec.tuning.pruning import RecentMedianPruner

        return RecentMedianPruner(window=10, n_startup=5)
    if name == "hyperband":
        first = _step(early[0]) if early else STEPS_PER_EPOCH
        return optuna.pruners.HyperbandPruner(
            min_resource=first, max_resource=max(first, n_epochs * STEPS_PER_EPOCH))
    return optuna.pruners.NopPruner()


def _step(epochs: float) -> int:
    """The Optuna step of a pruning check after ``epochs`` epochs of training."""
    return round(epochs * STEPS_PER_EPOCH)


def _check_early(early: Sequence[float]) -> tuple[float, ...]:
    """``early`` sorted, or ConfigError unless every point lies strictly inside an epoch
    and points are at least a thousandth of an epoch apart."""
    points = tuple(sorted(float(f) for f in early))
    bad = [f for f in points if not 0 < _step(f) < STEPS_PER_EPOCH]
    if bad or len({_step(f) for f in points}) < len(points):
        raise ConfigError(f"prune_early takes fractions of the first epoch between 0.001 "
                          f"and 0.999, each at least 0.001 apart (e.g. 0.25,0.5; none for only "
                          f"after each epoch), got {','.join(f'{f:g}' for f in points)}")
    return points


def _storage(optuna: Any, storage: str | None) -> Any:
    """None (in memory) or an RDB storage with heartbeats (a killed worker's trial is
    marked failed after :data:`GRACE_SECONDS`) and a patient SQLite lock wait."""
    if storage is None:
        return None
    kwargs: dict[str, Any] = {}
    if storage.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}  # workers share a file
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # optuna marks heartbeats experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    storage, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                    **kwargs)
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many kinds for bad URLs
            if attempt == 4 or not storage.startswith("sqlite"):
                raise ConfigError(f"cannot open the study storage "
                                  f"{storage.split('@')[-1]!r}: "
                                  f"{' '.join(str(exc).split())[:300]}") from None
            # another worker may be creating the tables of the new file at the same moment
            time.sleep(0.3 + 0.4 * np.random.default_rng().random())
    raise AssertionError("unreachable")


def _finished(t: Any, state: Any) -> bool:
    """Whether trial ``t`` holds one of the study's ``n_trials`` slots for good: complete,
    pruned, or failed on its own parameters (a killed worker's trial, failed without an
    ``error``, does not: its slot is trained again)."""
    return t.state in (state.COMPLETE, state.PRUNED) or (
        t.state == state.FAIL and "error" in t.user_attrs)


def _counts(study: Any, optuna: Any) -> tuple[int, int, tuple[float, int] | None]:
    """(finished trials, running trials, best (value, number) or None) of the study, over
    every worker; surplus trials and trials of killed workers are not counted (their slot
    is trained again)."""
    state = optuna.trial.TrialState
    finished = running = 0
    best: tuple[float, int] | None = None
    for t in study.get_trials(deepcopy=False):
        if _finished(t, state):
            finished += 1
        elif t.state == state.RUNNING:
            running += 1
        if t.state == state.COMPLETE and (best is None or t.value > best[0]):
            best = (t.value, t.number)
    return finished, running, best


@contextlib.contextmanager
def _flush_denormals() -> Iterator[None]:
    """Flush subnormal floats to zero while trials train: a diverging trial's scores and
    softmax weights fill with subnormals, which x86 CPUs compute 10-50x slower (a hopeless
    bpr-max epoch on yoochoose100k took 54 s instead of 3.7 s); healthy training never
    reaches them and gives bit-identical losses."""
    import torch

    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)  # PyTorch's default


def _as_space(space: str | Path | Sequence[Param | Mapping[str, Any]],
              fixed: Mapping[str, Any]) -> list[Param]:
    """A space given as a file or as dicts, checked against ``fixed``; :class:`Param`
    objects (checked when they were read) as they are."""
    if isinstance(space, str | Path):
        return read_space(space, fixed)
    if space and all(isinstance(p, Param) for p in space):
        return list(cast("Sequence[Param]", space))
    return space_from(list(space), fixed)


def tune(train: Any, valid: Any, space: str | Path | Sequence[Param | Mapping[str, Any]], *,
         fixed: Mapping[str, Any] | None = None, n_trials: int = 50,
         storage: str | None = None, study_name: str = "gru4rec", cutoff: int = 20,
         metric: str = "recall", mode: str = "standard", pruner: Any = "median",
         prune_events: int | None = 200_000, prune_early: Sequence[float] = PRUNE_EARLY,
         device: str | None = None, seed: int = 42,
         sample_store_size: int = 10_000_000,
         sampler_seed: int | None = None, session_key: str = "SessionId",
         item_key: str = "ItemId", time_key: str = "Time",
         on_trial: Callable[[TrialDone], None] | None = None,
         on_epoch: Callable[[EpochDone], None] | None = None,
         progress: Callable[[TrialProgress], None] | None = None,
         wait_poll: float = 2.0) -> optuna.Study:
    """Search ``space`` for the parameters that maximise Recall@``cutoff`` (or MRR) on
    ``valid`` when training on ``train``; returns the Optuna study.

    Args:
        train, valid: click logs (path, DataFrame or Events), read once.
        space: the searched parameters: a space file (:func:`read_space`), or
            :class:`Param` objects or dicts (:func:`space_from`); ``fixed``: the other
            parameters (like ``-ps`` values; strings are converted).
        n_trials: trials of the whole study: with a storage shared by several workers,
            they finish this many together (a rerun after a crash finishes the rest).
        storage: an Optuna RDB URL (e.g. ``sqlite:///study.db``); ``None``: in memory.
        study_name: the study in the storage (created, or continued when it exists).
        metric: ``recall`` or ``mrr``; ``mode``: tie handling of the evaluation.
        pruner: ``median`` (stop a trial whose metric at a pruning check is below the
            median of the 10 most recently completed trials at that check:
            :class:`~gru4rec.tuning.pruning.RecentMedianPruner`), ``hyperband``, ``none``,
            or any Optuna pruner object (``optuna.pruners.NopPruner()`` records the
            learning curves of every trial without stopping any).
        prune_events: the evaluations for pruning run on a fixed subsample of whole
            validation sessions with at most this many events (``None``: all); the
            trial's value is always measured on the whole validation set.
        prune_early: the pruner checks a trial after each epoch and, inside the first
            epoch, at these fractions of it (default: an eighth, a quarter and a half into
            it; ``()``: after each epoch only). A check costs one evaluation of the pruning
            sample; on short trials the early ones save most (a trial pruned an eighth into
            a 3-epoch trial saves 2.875 epochs instead of 2).
        seed: the training seed of every trial; ``sampler_seed``: the sampler's (give each
            worker another one, or none). ``sample_store_size``: as in :class:`GRU4Rec`.
        on_trial: called after each trial this worker ran; ``on_epoch``: after each epoch
            (:class:`EpochDone`); ``progress``: during training (:class:`TrialProgress`).

    Subnormal floats are flushed to zero while the trials train (see
    :func:`_flush_denormals`) and PyTorch's default is restored afterwards.

    Raises:
        ConfigError: optuna is missing, a bad option, space, metric, pruner, device or
            storage, or fixed parameters that are not valid.
        DataError: the data cannot be read, or the validation set leaves no prediction.
    """
    opt = require_optuna()
    if metric not in ("recall", "mrr"):
        raise ConfigError(f"metric must be recall or mrr, got {metric!r}")
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"n_trials must be a positive integer, got {n_trials!r}")
    if isinstance(pruner, str) and pruner not in PRUNERS:
        raise ConfigError(f"pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    early = _check_early(prune_early)
    from gru4rec.model import resolve_device

    device = str(resolve_device(device))  # a device this machine lacks: an error, not N trials
    base = GRU4RecConfig.from_dict(dict(fixed or {}))
    params = _as_space(space, dict(fixed or {}))
    rdb = _storage(opt, storage)  # a bad URL is found before the data is read
    keys = {"session_key": session_key, "item_key": item_key, "time_key": time_key}
    valid_ev = read_events(valid, **keys)
    objective = _Objective(
        opt, base, params, read_events(train, **keys), valid_ev,
        subsample_sessions(valid_ev, prune_events) if pruner != "none" else None,
        n_trials=n_trials, cutoff=cutoff, metric=metric, mode=mode, early=early,
        model_args={"device": device, "seed": seed, "sample_store_size": sample_store_size},
        on_epoch=on_epoch, progress=progress)
    with warnings.catch_warnings():
        # heartbeats (a killed worker's trial is failed) are marked experimental by optuna
        warnings.simplefilter("ignore", opt.exceptions.ExperimentalWarning)
        objective.study = study = opt.create_study(
            storage=rdb, study_name=study_name, direction="maximize",
            load_if_exists=True, pruner=_make_pruner(opt, pruner, base.n_epochs, early))
        study.sampler = opt.samplers.TPESampler(seed=_sampler_seed(sampler_seed, study))

        def report(study: Any, frozen: Any) -> None:  # optuna's Study and FrozenTrial
            if on_trial is None or frozen.user_attrs.get("surplus"):
                return
            finished, _, best = _counts(study, opt)
            on_trial(TrialDone(frozen.number, frozen.state.name,
                               frozen.value if frozen.state.name == "COMPLETE" else None,
                               frozen.user_attrs.get("epochs", 0), finished,
                               dict(frozen.params), frozen.user_attrs.get("error"), best))

        with _flush_denormals():
            _optimize(opt, study, objective, report, n_trials, wait_poll)
    return cast("optuna.Study", study)


class _Objective:
    """One trial: train the suggested parameters on the training events, report the
    pruning metric after each epoch, and return the metric on the validation events."""

    def __init__(self, opt: Any, base: GRU4RecConfig, space: list[Param], train: Events,
                 valid: Events, prune: Events | None, *, n_trials: int, cutoff: int,
                 metric: str, mode: str, early: tuple[float, ...],
                 model_args: dict[str, Any],
                 on_epoch: Callable[[EpochDone], None] | None,
                 progress: Callable[[TrialProgress], None] | None) -> None:
        self.opt, self.base, self.space = opt, base, space
        self.train, self.valid, self.prune = train, valid, prune
        self.n_trials, self.cutoff, self.mode, self.early = n_trials, cutoff, mode, early
        self.key = f"{'Recall' if metric == 'recall' else 'MRR'}@{cutoff}"
        self.model_args, self.on_epoch, self.progress = model_args, on_epoch, progress
        self.study: Any = None  # set once the study is open

    def _started_before(self, number: int) -> int:
        """Trials before ``number`` that are finished or still running (on any worker)."""
        state = self.opt.trial.TrialState
        return sum(1 for t in self.study.get_trials(deepcopy=False) if t.number < number
                   and (t.state == state.RUNNING or _finished(t, state)))

    def __call__(self, trial: Any) -> float:  # an optuna.Trial
        # which worker runs it; also tells _fail_orphans that the trial got this far
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        if self._started_before(trial.number) >= self.n_trials:
            trial.set_user_attr("surplus", True)
            raise _Surplus
        status = _counts(self.study, self.opt)
        params = {p.name: p.suggest(trial) for p in self.space}
        start = time.perf_counter()
        try:
            res = self._train(trial, self.base.replace(**params), status[0], status[2])
        except (ConfigError, TrainingDivergedError) as exc:  # this trial's parameters
            trial.set_user_attr("error", str(exc).splitlines()[0][:500])
            return float("nan")  # recorded as a failed trial that counts as finished
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        trial.set_user_attr("recall", res[f"Recall@{self.cutoff}"])
        trial.set_user_attr("mrr", res[f"MRR@{self.cutoff}"])
        return float(res[self.key])

    def _train(self, trial: Any, config: GRU4RecConfig, finished: int,
               best: tuple[float, int] | None) -> Any:
        """Train one trial (raising ``TrialPruned`` when the pruner says so) and evaluate it
        on the validation events."""
        from gru4rec.evaluation import evaluate
        from gru4rec.model import GRU4Rec

        model = GRU4Rec(config, **self.model_args)
        epoch, last = 1, None  # last: the newest pruning evaluation when it used every event
        early: dict[int, float] | None = None  # first epoch's step -> early pruning point

        def check(trained: float) -> None:
            """Report the pruning metric after ``trained`` epochs; prune if told to."""
            nonlocal last
            trial.set_user_attr("epochs", trained)
            value = None
            if self.prune is not None:
                res = evaluate(model, self.prune, cutoffs=[self.cutoff], mode=self.mode)
                last = res if self.prune is self.valid else None
                value = res[self.key]
                trial.report(value, _step(trained))
            if self.on_epoch is not None:
                self.on_epoch(EpochDone(
                    trial.number, trained, config.n_epochs, value, finished, best,
                    len(self.prune.item) if self.prune is not None else 0,
                    len(self.valid.item)))
            # after the last epoch there is nothing left to save: the trial completes
            if value is not None and trained < config.n_epochs and trial.should_prune():
                raise self.opt.TrialPruned(f"pruned after {trained:g} epochs")

        def step_done(done: int, steps: int) -> None:
            nonlocal early
            if epoch != 1 or self.prune is None or not self.early:
                return
            if early is None:  # the steps of the points, now that the epoch's length is known
                early = {}
                for f in self.early:
                    early.setdefault(min(max(1, round(f * steps)), steps), f)
                early.pop(steps, None)  # the end of the epoch has its own check
            if done in early:
                check(early[done])

        def steps_done(done: int, steps: int) -> None:
            if self.progress is not None:
                self.progress(TrialProgress(trial.number, epoch, config.n_epochs, done, steps,
                                            finished, best))

        def epoch_done(result: Any) -> None:
            nonlocal epoch
            epoch = result.epoch + 1
            check(result.epoch)

        model.fit(self.train, on_epoch=epoch_done, progress=steps_done, on_step=step_done)
        # a pruning sample that is the whole validation set has measured the trained model
        if last is not None:
            return last
        return evaluate(model, self.valid, cutoffs=[self.cutoff], mode=self.mode)


def _sampler_seed(seed: int | None, study: Any) -> int | None:
    """``seed`` for a new study; for one that already has trials (a rerun, or a worker
    joining), a seed drawn from ``seed`` and their count, so that the sampler does not
    replay the suggestions it made to the first run."""
    stored = len(study.get_trials(deepcopy=False))
    if seed is None or stored == 0:
        return seed
    return int(np.random.SeedSequence([seed, stored]).generate_state(1)[0])


def _fail_orphans(optuna: Any, study: Any) -> None:
    """Mark failed the trials of workers that died before the trial's first heartbeat:
    running, never started by an objective (no ``worker`` attribute) and created more than
    :data:`GRACE_SECONDS` ago. Optuna's stale-trial check only sees trials that have a
    heartbeat, so without this such a trial would hold its slot forever."""
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        started = t.datetime_start
        if "worker" not in t.user_attrs and started is not None and \
                (now - started).total_seconds() > GRACE_SECONDS:
            log.warning("trial %d was left running by a worker that stopped before it "
                        "started; marking it failed", t.number)
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)


def _optimize(optuna: Any, study: Any, objective: Any, report: Any, n_trials: int,
              wait_poll: float) -> None:
    """Run trials one at a time until the study has ``n_trials`` finished ones."""
    waiting = False
    while True:
        optuna.storages.fail_stale_trials(study)
        _fail_orphans(optuna, study)
        finished, running, _ = _counts(study, optuna)
        if finished >= n_trials:
            return
        if finished + running >= n_trials:  # the last ones run on other workers
            if not waiting:
                log.info("waiting for %d running trial(s) of other workers", running)
                waiting = True
            time.sleep(wait_poll)
            continue
        waiting = False
        study.optimize(objective, n_trials=1, catch=(_Surplus,), callbacks=[report])
