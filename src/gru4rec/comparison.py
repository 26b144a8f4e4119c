"""Compare GRU4Rec with the baselines on one evaluator: train each model on the same data,
measure all on the same predictions, optionally after tuning each on a validation split.

::

    from gru4rec.comparison import ModelSpec, compare
    result = compare("train.tsv", "test.tsv",
                     [ModelSpec("gru4rec", {"loss": "cross-entropy", "n_epochs": 10}),
                      ModelSpec("vsknn", {"k": 100}), ModelSpec("pop")])
    print(result.table())
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gru4rec.baselines import Baseline, make_baseline
from gru4rec.baselines.grids import grid_points
from gru4rec.config import GRU4RecConfig
from gru4rec.data.events import Events
from gru4rec.data.io import read_events
from gru4rec.data.synthetic import train_test_split_last
from gru4rec.errors import ConfigError
from gru4rec.evaluation import evaluate
from gru4rec.model import GRU4Rec

__all__ = ["Comparison", "ComparisonRow", "ModelSpec", "compare"]

log = logging.getLogger(__name__)
VALID_FRACTION = 0.1  # --tune: the sessions starting in the last 10% of the time range


@dataclass(frozen=True)
class ModelSpec:
    """A model to train: its name (``gru4rec`` or a baseline's), its parameters (values or
    text) and how tables name it (``label``, default the name)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    label: str = ""

    @property
    def shown(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class ComparisonRow:
    """One model's result: its parameters (after tuning), metrics and times."""

    label: str
    model: str
    params: dict[str, Any]
    metrics: dict[str, float]
    n_predictions: int
    train_seconds: float
    eval_seconds: float
    tuned_trials: int = 0

    @property
    def predictions_per_second(self) -> float:
        return self.n_predictions / self.eval_seconds if self.eval_seconds > 0 else 0.0


@dataclass(frozen=True)
class Comparison:
    """The rows of :func:`compare`, with what they were measured on."""

    rows: list[ComparisonRow]
    cutoffs: tuple[int, ...]
    mode: str

    def table(self, markdown: bool = False) -> str:
        """The rows as an aligned text table (or a Markdown one): Recall@k and MRR@k at every
        cutoff, train time, prediction speed."""
        head = ["model", *(f"{m}@{k}" for k in self.cutoffs for m in ("Recall", "MRR")),
                "train s", "pred/s"]
        body = [[r.label, *(f"{r.metrics[f'{m}@{k}']:.4f}" for k in self.cutoffs
                            for m in ("Recall", "MRR")),
                 f"{r.train_seconds:.1f}", f"{r.predictions_per_second:,.0f}"]
                for r in self.rows]
        if markdown:
            lines = [head, ["---"] * len(head), *body]
            return "\n".join("| " + " | ".join(row) + " |" for row in lines)
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                         for row in [head, *body])

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON: the settings and every row."""
        return {"cutoffs": list(self.cutoffs), "mode": self.mode,
                "models": [{"label": r.label, "model": r.model, "params": r.params,
                            "metrics": r.metrics, "n_predictions": r.n_predictions,
                            "train_seconds": r.train_seconds, "eval_seconds": r.eval_seconds,
                            "predictions_per_second": r.predictions_per_second,
                            "tuned_trials": r.tuned_trials} for r in self.rows]}

    def plot(self, path: str | Path) -> None:
        """A bar plot of Recall@k and MRR@k at the largest cutoff per model (matplotlib, the
        ``plot`` extra), written to ``path`` (.png, .svg or .pdf).

        Raises:
            ConfigError: matplotlib is not installed.
        """
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ConfigError('the bar plot needs matplotlib: pip install "gru4rec[plot]"'
                              ) from None
        k = max(self.cutoffs)
        labels = [r.label for r in self.rows]
        fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(labels) + 2), 4))
        pos = list(range(len(labels)))
        for shift, metric in ((-0.2, "Recall"), (0.2, "MRR")):
            ax.bar([p + shift for p in pos], [r.metrics[f"{metric}@{k}"] for r in self.rows],
                   width=0.4, label=f"{metric}@{k}")
        ax.set_xticks(pos, labels, rotation=30, ha="right")
        ax.set_ylabel(f"at {k}, {self.mode} ties")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # never over a bar
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def compare(train: Any, test: Any, models: Sequence[ModelSpec], *,
            cutoffs: Sequence[int] = (5, 10, 20), mode: str = "conservative",
            seed: int = 42, device: str | None = None, tune_trials: int = 0,
            tune_metric: str = "mrr", space: str | Path | None = None,
            keys: Mapping[str, str] | None = None,
            on_start: Callable[[ModelSpec], None] | None = None,
            on_result: Callable[[ComparisonRow], None] | None = None,
            on_epoch: Callable[[Any], None] | None = None) -> Comparison:
    """Train every model of ``models`` on ``train`` and evaluate all on ``test`` (paths,
    DataFrames or Events) with the same evaluator, cutoffs and tie ``mode``.

    With ``tune_trials`` = N > 0 each model is first tuned on a validation split of
    ``train`` (the sessions starting in its last 10% of time are validation, the rest is
    trained on) for MRR (``tune_metric``) at the largest cutoff: a baseline over N points of
    its grid (:mod:`gru4rec.baselines.grids`; the grid's values replace given ones), GRU4Rec
    with an Optuna study of N trials over ``space`` (the ``tune`` extra; the searched
    parameters replace given ones, the others stay fixed). The best parameters are
    then trained on the whole of ``train``.

    ``on_start`` is called with each spec before its work starts, ``on_result`` with each
    row as it is done, ``on_epoch`` with GRU4Rec's epochs (:class:`EpochResult`).

    Raises:
        ConfigError: an unknown model or bad parameters (found before any training),
            GRU4Rec tuning without ``space``, or bad evaluation options.
        DataError: the data cannot be read or leaves no prediction.
    """
    if not models:
        raise ConfigError("no models to compare; give at least one")
    if tune_metric not in ("recall", "mrr"):
        raise ConfigError(f"tune_metric must be recall or mrr, got {tune_metric!r}")
    for spec in models:  # every parameter problem before any training
        _check_spec(spec, space if tune_trials else "-")
    if tune_trials and any(spec.name == "gru4rec" for spec in models):
        from gru4rec.tuning import require_optuna

        require_optuna()
    keys = dict(keys or {})
    train_ev, test_ev = read_events(train, **keys), read_events(test, **keys)
    split = train_test_split_last(train_ev, VALID_FRACTION) if tune_trials else None
    rows = []
    for spec in models:
        if on_start is not None:
            on_start(spec)
        params = dict(spec.params)
        if split is not None:
            params = _tuned(spec, split, tune_trials, tune_metric, cutoffs, mode, seed,
                            device, space)
        start = time.perf_counter()
        model = _fit(spec.name, params, train_ev, seed, device, on_epoch)
        seconds = time.perf_counter() - start
        result = evaluate(model, test_ev, cutoffs=cutoffs, mode=mode, seed=seed)
        row = ComparisonRow(spec.shown, spec.name, _plain(model, params), result.metrics,
                            result.n_predictions, seconds, result.seconds,
                            tune_trials if split is not None else 0)
        if on_result is not None:
            on_result(row)
        rows.append(row)
    return Comparison(rows, tuple(sorted(set(cutoffs))), mode)


def _check_spec(spec: ModelSpec, space: str | Path | None) -> None:
    if spec.name == "gru4rec":
        GRU4RecConfig.from_dict(spec.params)
        if space is None:
            raise ConfigError("tuning GRU4Rec needs a parameter space: give --space "
                              "(e.g. configs/spaces/gru4rec_xe_space.json)")
    else:
        make_baseline(spec.name, spec.params)


def _fit(name: str, params: Mapping[str, Any], train: Events, seed: int,
         device: str | None, on_epoch: Callable[[Any], None] | None) -> GRU4Rec | Baseline:
    if name == "gru4rec":
        return GRU4Rec(GRU4RecConfig.from_dict(params), device=device, seed=seed).fit(
            train, on_epoch=on_epoch)
    return make_baseline(name, params, seed=seed).fit(train)


def _plain(model: GRU4Rec | Baseline, given: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters to report: a baseline's full set, GRU4Rec's given ones."""
    if isinstance(model, Baseline):
        return model.get_params()
    values = model.config.to_dict()
    return {k: values[k] for k in given}


def _tuned(spec: ModelSpec, split: tuple[Events, Events], n: int, metric: str,
           cutoffs: Sequence[int], mode: str, seed: int, device: str | None,
           space: str | Path | None) -> dict[str, Any]:
    """The spec's parameters updated with the best found on the validation split."""
    tr, va = split
    key = f"{'MRR' if metric == 'mrr' else 'Recall'}@{max(cutoffs)}"
    if spec.name == "gru4rec":
        from gru4rec.tuning import read_space, tune

        assert space is not None  # checked by _check_spec
        searched = {p.name for p in read_space(space)}  # they replace the given values
        fixed = {k: v for k, v in spec.params.items() if k not in searched}
        study = tune(tr, va, space, fixed=fixed, n_trials=n, cutoff=max(cutoffs),
                     metric=metric, mode=mode, device=device, seed=seed)
        return {**fixed, **study.best_params}
    best: tuple[float, dict[str, Any]] = (-1.0, dict(spec.params))
    for point in grid_points(spec.name, n, seed):
        params = {**spec.params, **point}
        model = make_baseline(spec.name, params, seed=seed).fit(tr)
        value = evaluate(model, va, cutoffs=[max(cutoffs)], mode=mode, seed=seed)[key]
        log.info("%s %s: %s %.4f", spec.name, point, key, value)
        if value > best[0]:
            best = (value, params)
    return best[1]
