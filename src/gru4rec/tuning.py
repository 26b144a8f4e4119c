"""Hyperparameter optimisation with Optuna (the ``tune`` extra, imported lazily).

A **parameter space** lists the hyperparameters to search, one JSON object per line (the
format of the original ``paropt.py``)::

    {"name": "layers", "dtype": "int", "values": [64, 512], "step": 32}
    {"name": "learning_rate", "dtype": "float", "values": [0.01, 0.25], "step": 0.005}
    {"name": "elu_param", "dtype": "categorical", "values": [0.5, 1, 0]}

``dtype`` is ``int``, ``float`` or ``categorical``; ``int`` and ``float`` take ``[low,
high]`` (both included) with an optional ``step`` or ``"log": true``. A ``.toml`` space holds
the same as tables named by the parameter (``[layers]`` ``dtype = "int"`` ...).

:func:`tune` trains every trial in this process on data read once, evaluates it on the
validation set, and with a pruner reports the metric after each epoch so that hopeless
trials stop early. The study lives in an Optuna storage: with an RDB URL (SQLite file,
PostgreSQL, MySQL) it survives a crash (rerun to continue) and several workers, on one
machine or many, share it; together they finish exactly ``n_trials`` trials.
"""

from __future__ import annotations

import json
import logging
import math
import time
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from gru4rec.config import GRU4RecConfig
from gru4rec.data.events import Events
from gru4rec.data.io import read_events
from gru4rec.errors import ConfigError, TrainingDivergedError

if TYPE_CHECKING:
    import optuna

__all__ = ["PRUNERS", "Param", "TrialDone", "read_space", "require_optuna", "space_from",
           "tune"]

log = logging.getLogger(__name__)
PRUNERS = ("median", "hyperband", "none")
_DTYPES = ("int", "float", "categorical")
_KEYS = {"name", "dtype", "values", "step", "log"}
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
class Param:
    """One searched hyperparameter: ``values`` is ``(low, high)`` for int and float, the
    choices for categorical."""

    name: str
    dtype: str
    values: tuple[Any, ...]
    step: float | None = None
    log: bool = False

    def suggest(self, trial: optuna.Trial) -> Any:
        """This parameter's value for ``trial``."""
        if self.dtype == "categorical":
            return trial.suggest_categorical(self.name, list(self.values))
        lo, hi = self.values
        if self.dtype == "int":
            return trial.suggest_int(self.name, int(lo), int(hi),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, float(lo), float(hi), step=self.step,
                                   log=self.log)

    def describe(self) -> str:
        """One line, as the original prints the space."""
        if self.dtype == "categorical":
            return f"PARAMETER {self.name} \t type=categorical \t options: " \
                   f"[{','.join(str(v) for v in self.values)}]"
        step = self.step if self.step is not None else (1 if self.dtype == "int" else "N/A")
        return (f"PARAMETER {self.name} \t type={self.dtype} \t range=[{self.values[0]}.."
                f"{self.values[1]}] (step={step}) \t {'LOG' if self.log else 'UNIFORM'} scale")


def read_space(path: str | Path, fixed: Mapping[str, Any] | None = None) -> list[Param]:
    """Read a parameter space file: JSON lines, or ``.toml`` (see the module docstring).

    Raises:
        ConfigError: the file cannot be read or parsed, or the space is invalid (see
            :func:`space_from`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the parameter space {path}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    entries: list[Any] = []
    if path.suffix == ".toml":
        try:
            tables = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        entries = [{"name": k, **v} if isinstance(v, dict) else {"name": k, "values": v}
                   for k, v in tables.items()]
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}, line {n} is not a JSON object: {exc.msg} "
                                  f'(expected e.g. {{"name": "layers", "dtype": "int", '
                                  f'"values": [64, 512], "step": 32}})') from None
    return space_from(entries, fixed, source=str(path))


def space_from(entries: Sequence[Any], fixed: Mapping[str, Any] | None = None, *,
               source: str = "the parameter space") -> list[Param]:
    """Check a space given as dicts (``name``, ``dtype``, ``values``, ``step``, ``log``).

    Every value a parameter can take must be valid together with ``fixed`` (the fixed
    parameters); a parameter cannot be both fixed and searched.

    Raises:
        ConfigError: one error listing every problem (unknown parameter or key, bad dtype,
            empty or reversed range, bad step, a value of the wrong type), before anything
            is trained.
    """
    fixed = dict(fixed or {})
    GRU4RecConfig.from_dict(fixed)  # bad fixed parameters: their own error, first
    names = GRU4RecConfig.field_names()
    problems: list[str] = []
    space: list[Param] = []
    for n, entry in enumerate(entries, start=1):
        where = f"entry {n}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected an object with name, dtype and values")
            continue
        name = entry.get("name")
        where = f"{where} ({name})" if isinstance(name, str) else where
        extra = sorted(set(entry) - _KEYS)
        if extra:
            problems.append(f"{where}: unknown key(s) {', '.join(extra)} (allowed: name, "
                            "dtype, values, step, log)")
        if not isinstance(name, str) or name not in names:
            problems.append(f"{where}: unknown parameter {name!r}; GRU4Rec's parameters: "
                            f"{', '.join(names)}")
            continue
        if name in fixed:
            problems.append(f"{where}: {name} is also a fixed parameter; search it or fix it")
        if any(p.name == name for p in space):
            problems.append(f"{where}: {name} appears twice")
        param = _check_entry(entry, name, where, problems)
        if param is None:
            continue
        for value in param.values:
            try:
                GRU4RecConfig.from_dict({**fixed, name: value})
            except ConfigError as exc:
                problems.append(f"{where}: value {value!r} is not valid: "
                                f"{'; '.join(exc.problems) or exc}")
        space.append(param)
    if not entries:
        problems.append("no parameter to search")
    if problems:
        raise ConfigError(f"invalid parameter space in {source}:\n  - " +
                          "\n  - ".join(problems), problems)
    return space


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _check_entry(entry: dict[str, Any], name: str, where: str,
                 problems: list[str]) -> Param | None:
    """The entry as a :class:`Param`, or ``None`` after adding its problems."""
    dtype, values = entry.get("dtype"), entry.get("values")
    step, use_log = entry.get("step"), entry.get("log", False)
    if dtype not in _DTYPES:
        problems.append(f"{where}: dtype must be int, float or categorical, got {dtype!r}")
        return None
    if not isinstance(values, list) or not values:
        problems.append(f"{where}: values must be a non-empty list")
        return None
    if not isinstance(use_log, bool):
        problems.append(f"{where}: log must be true or false, got {use_log!r}")
        return None
    if dtype == "categorical":
        if step is not None or use_log:
            problems.append(f"{where}: step and log apply to int and float only")
        if any(not isinstance(v, str | int | float | bool) for v in values):
            problems.append(f"{where}: categorical values must be numbers, strings or "
                            "booleans")
            return None
        return Param(name, dtype, tuple(values))
    before = len(problems)
    if len(values) != 2 or not all(_number(v) for v in values):
        problems.append(f"{where}: {dtype} values must be [low, high] numbers, got {values!r}")
        return None
    lo, hi = values
    if lo > hi:
        problems.append(f"{where}: the range [{lo}, {hi}] is empty (low > high)")
    if dtype == "int" and not all(float(v).is_integer() for v in values):
        problems.append(f"{where}: int bounds must be whole numbers, got {values!r}")
    if step is not None:
        if not _number(step) or step <= 0:
            problems.append(f"{where}: step must be a positive number, got {step!r}")
        elif dtype == "int" and not float(step).is_integer():
            problems.append(f"{where}: an int step must be a whole number, got {step!r}")
        if use_log:
            problems.append(f"{where}: step and log cannot be combined")
    if use_log and lo <= 0:
        problems.append(f"{where}: a log scale needs low > 0, got {lo}")
    if len(problems) > before:
        return None
    return Param(name, dtype, (int(lo), int(hi)) if dtype == "int" else (lo, hi),
                 None if step is None else (int(step) if dtype == "int" else float(step)),
                 use_log)


@dataclass(frozen=True)
class TrialDone:
    """What a finished trial reports to ``on_trial``: its number, state (``COMPLETE``,
    ``PRUNED`` or ``FAIL``), value (``None`` unless complete), epochs trained and how many
    trials of the study are finished."""

    number: int
    state: str
    value: float | None
    epochs: int
    finished: int
    params: dict[str, Any]
    error: str | None = None


class _Surplus(Exception):
    """Other workers already started the study's last trials."""


def _subsample(events: Events, max_events: int | None, seed: int = 0) -> Events:
    """A fixed random subset of whole sessions with at most ``max_events`` events."""
    if max_events is None or len(events.item) <= max_events:
        return events
    sessions, inverse, counts = np.unique(events.session, return_inverse=True,
                                          return_counts=True)
    order = np.random.default_rng(seed).permutation(len(sessions))
    keep = np.zeros(len(sessions), dtype=bool)
    keep[order[np.cumsum(counts[order]) <= max_events]] = True
    mask = keep[inverse]
    return Events(events.session[mask], events.item[mask], events.time[mask])


def _make_pruner(optuna: Any, name: str, n_epochs: int) -> Any:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, n_epochs))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"pruner must be one of {', '.join(PRUNERS)}, got {name!r}")


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
            return optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_SECONDS,
                                              grace_period=GRACE_SECONDS, **kwargs)
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many kinds for bad URLs
            if attempt == 4 or not storage.startswith("sqlite"):
                raise ConfigError(f"cannot open the study storage "
                                  f"{storage.split('@')[-1]!r}: "
                                  f"{' '.join(str(exc).split())[:300]}") from None
            # another worker may be creating the tables of the new file at the same moment
            time.sleep(0.3 + 0.4 * np.random.default_rng().random())
    raise AssertionError("unreachable")


def _counts(study: Any, optuna: Any) -> tuple[int, int]:
    """(finished trials, running trials) of the study; surplus trials and trials of killed
    workers are not counted (their slot is trained again)."""
    state = optuna.trial.TrialState
    finished = running = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (state.COMPLETE, state.PRUNED) or (
                t.state == state.FAIL and "error" in t.user_attrs):
            finished += 1
        elif t.state == state.RUNNING:
            running += 1
    return finished, running


def tune(train: Any, valid: Any, space: Sequence[Param], *,
         fixed: Mapping[str, Any] | None = None, n_trials: int = 50,
         storage: str | None = None, study_name: str = "gru4rec", cutoff: int = 20,
         metric: str = "recall", mode: str = "standard", pruner: str = "median",
         prune_events: int | None = 200_000, device: str | None = None, seed: int = 42,
         sample_store_size: int = 10_000_000,
         sampler_seed: int | None = None, session_key: str = "SessionId",
         item_key: str = "ItemId", time_key: str = "Time",
         on_trial: Callable[[TrialDone], None] | None = None,
         on_epoch: Callable[[int, int, float | None], None] | None = None,
         wait_poll: float = 2.0) -> optuna.Study:
    """Search ``space`` for the parameters that maximise Recall@``cutoff`` (or MRR) on
    ``valid`` when training on ``train``; returns the Optuna study.

    Args:
        train, valid: click logs (path, DataFrame or Events), read once.
        space: the searched parameters (:func:`read_space`); ``fixed``: the others (like
            ``-ps`` values; strings are converted).
        n_trials: trials of the whole study: with a storage shared by several workers,
            they finish this many together (a rerun after a crash finishes the rest).
        storage: an Optuna RDB URL (e.g. ``sqlite:///study.db``); ``None``: in memory.
        study_name: the study in the storage (created, or continued when it exists).
        metric: ``recall`` or ``mrr``; ``mode``: tie handling of the evaluation.
        pruner: ``median`` (stop a trial whose metric after an epoch is below the median of
            earlier trials at that epoch), ``hyperband`` or ``none``.
        prune_events: the per-epoch evaluations for pruning run on a fixed subsample of
            whole validation sessions with at most this many events (``None``: all); the
            trial's value is always measured on the whole validation set.
        seed: the training seed of every trial; ``sampler_seed``: the sampler's (give each
            worker another one, or none). ``sample_store_size``: as in :class:`GRU4Rec`.
        on_trial: called after each trial this worker ran; ``on_epoch``: with (trial
            number, epoch, intermediate value or None) after each epoch.

    Raises:
        ConfigError: optuna is missing, a bad option, metric, pruner or storage, or fixed
            parameters that are not valid.
        DataError: the data cannot be read, or the validation set leaves no prediction.
    """
    opt = require_optuna()
    from gru4rec.evaluation import evaluate
    from gru4rec.model import GRU4Rec

    if metric not in ("recall", "mrr"):
        raise ConfigError(f"metric must be recall or mrr, got {metric!r}")
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"n_trials must be a positive integer, got {n_trials!r}")
    base = GRU4RecConfig.from_dict(dict(fixed or {}))
    pruning = pruner != "none"
    keys = {"session_key": session_key, "item_key": item_key, "time_key": time_key}
    train_ev, valid_ev = read_events(train, **keys), read_events(valid, **keys)
    prune_ev = _subsample(valid_ev, prune_events) if pruning else valid_ev
    key = f"{'Recall' if metric == 'recall' else 'MRR'}@{cutoff}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", opt.exceptions.ExperimentalWarning)
        study = opt.create_study(
            storage=_storage(opt, storage), study_name=study_name, direction="maximize",
            load_if_exists=True, pruner=_make_pruner(opt, pruner, base.n_epochs),
            sampler=opt.samplers.TPESampler(seed=sampler_seed))
    state = opt.trial.TrialState

    def objective(trial: Any) -> float:  # an opt.Trial
        done = sum(1 for t in study.get_trials(deepcopy=False) if t.number < trial.number
                   and (t.state in (state.COMPLETE, state.PRUNED, state.RUNNING)
                        or (t.state == state.FAIL and "error" in t.user_attrs)))
        if done >= n_trials:
            trial.set_user_attr("surplus", True)
            raise _Surplus
        params = {p.name: p.suggest(trial) for p in space}
        start = time.perf_counter()
        try:
            config = base.replace(**params)
            model = GRU4Rec(config, device=device, seed=seed,
                            sample_store_size=sample_store_size)

            def epoch_done(result: Any) -> None:
                trial.set_user_attr("epochs", result.epoch)
                value = None
                if pruning:
                    value = evaluate(model, prune_ev, cutoffs=[cutoff], mode=mode)[key]
                    trial.report(value, result.epoch)
                if on_epoch is not None:
                    on_epoch(trial.number, result.epoch, value)
                # after the last epoch there is nothing left to save: the trial completes
                if pruning and result.epoch < config.n_epochs and trial.should_prune():
                    raise opt.TrialPruned(f"pruned after epoch {result.epoch}")

            model.fit(train_ev, on_epoch=epoch_done)
            res = evaluate(model, valid_ev, cutoffs=[cutoff], mode=mode)
        except (ConfigError, TrainingDivergedError) as exc:  # this trial's parameters
            trial.set_user_attr("error", str(exc).splitlines()[0][:500])
            return float("nan")  # recorded as a failed trial that counts as finished
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        trial.set_user_attr("recall", res[f"Recall@{cutoff}"])
        trial.set_user_attr("mrr", res[f"MRR@{cutoff}"])
        return float(res[key])

    def report(study: Any, frozen: Any) -> None:  # optuna's Study and FrozenTrial
        if on_trial is None or frozen.user_attrs.get("surplus"):
            return
        finished, _ = _counts(study, opt)
        value = frozen.value if frozen.state == state.COMPLETE else None
        on_trial(TrialDone(frozen.number, frozen.state.name, value,
                           int(frozen.user_attrs.get("epochs", 0)), finished,
                           dict(frozen.params), frozen.user_attrs.get("error")))

    with warnings.catch_warnings():
        # heartbeats (a killed worker's trial is failed) are marked experimental by optuna
        warnings.simplefilter("ignore", opt.exceptions.ExperimentalWarning)
        _optimize(opt, study, objective, report, n_trials, wait_poll)
    return cast("optuna.Study", study)


def _optimize(optuna: Any, study: Any, objective: Any, report: Any, n_trials: int,
              wait_poll: float) -> None:
    """Run trials one at a time until the study has ``n_trials`` finished ones."""
    waiting = False
    while True:
        optuna.storages.fail_stale_trials(study)
        finished, running = _counts(study, optuna)
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
