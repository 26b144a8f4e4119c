"""Preprocessing of public session datasets into train/test splits, as in the papers.

::

    from gru4rec.data.datasets import preprocess
    report = preprocess("rsc15", ["yoochoose-clicks.dat"], "data/rsc15")
    print(report.splits["test"].events)

Each recipe (one module each: ``rsc15``, ``yoochoose``, ``rees46``, ``coveo``,
``retailrocket``, ``diginetica``, ``generic``) documents its source, raw format and protocol.
The work is done by polars (``pip install "gru4rec[polars]"``), imported on first use.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gru4rec.data.datasets import (
    coveo,
    diginetica,
    generic,
    rees46,
    retailrocket,
    rsc15,
    yoochoose,
)
from gru4rec.data.datasets._output import (
    FORMATS,
    SplitStats,
    check_outdir,
    split_stats,
    write_splits,
)
from gru4rec.data.datasets._protocol import SPLITS, StepCount, Tracker, check_splits
from gru4rec.data.datasets._raw import require_polars
from gru4rec.data.datasets._recipe import PreprocessReport, Recipe
from gru4rec.errors import ConfigError

__all__ = [
    "DATASETS", "FORMATS", "SPLITS", "PreprocessReport", "Recipe", "SplitStats", "StepCount",
    "get_recipe", "preprocess", "run_recipe", "split_stats",
]

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    rsc15.RECIPE, yoochoose.RECIPE, rees46.RECIPE, coveo.RECIPE, retailrocket.RECIPE,
    diginetica.RECIPE, generic.RECIPE)}
DATASETS = tuple(RECIPES)


def get_recipe(dataset: str) -> Recipe:
    """The recipe called ``dataset``.

    Raises:
        ConfigError: no recipe has that name (the message lists the known ones).
    """
    try:
        return RECIPES[dataset]
    except KeyError:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of "
                          f"{', '.join(DATASETS)}") from None


def _check_options(recipe: Recipe, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(recipe.options))
    if unknown:
        accepted = ", ".join(recipe.options) if recipe.options else "none"
        raise ConfigError(f"the {recipe.name} recipe does not take the option(s) "
                          f"{', '.join(unknown)} (it takes: {accepted}); use the generic "
                          "recipe for a custom protocol")


def run_recipe(dataset: str, raw_paths: Sequence[str | os.PathLike[str]], *,
               on_step: Callable[[StepCount, float], None] | None = None,
               **options: Any) -> PreprocessReport:
    """Preprocess in memory: the report's ``frames`` holds the four splits (polars).

    ``on_step(step, seconds)`` is called after every step (progress).

    Raises:
        ConfigError: an unknown dataset, an option the recipe does not take, or (generic
            recipe) option values that are invalid or contradict each other.
        DataError: polars is not installed; a raw file is missing, empty or not in the
            recipe's format (the message names the file, the line and the expected format);
            or ``train_full`` or ``test`` comes out empty.
    """
    recipe = get_recipe(dataset)
    _check_options(recipe, options)
    require_polars()
    start = time.perf_counter()
    tracker = Tracker(on_step)
    frames = recipe.run([Path(p) for p in raw_paths], tracker, **options)
    check_splits(frames, dataset)
    unit = recipe.unit(options)
    stats = {name: split_stats(frames[name], unit) for name in SPLITS}
    report = PreprocessReport.from_tracker(dataset, tracker, stats, unit)
    report.frames = {name: frames[name] for name in SPLITS}
    report.seconds = time.perf_counter() - start
    return report


def preprocess(dataset: str, raw_paths: Sequence[str | os.PathLike[str]],
               outdir: str | os.PathLike[str], fmt: str = "tsv", *,
               on_step: Callable[[StepCount, float], None] | None = None,
               **options: Any) -> PreprocessReport:
    """Preprocess ``raw_paths`` with the ``dataset`` recipe and write ``train_full``,
    ``test``, ``train_tr`` and ``train_valid`` (``.tsv`` or ``.parquet``) into ``outdir``.

    Nothing is written unless everything succeeds (the files are moved in at the end).
    Returns the report (steps, cut times, split statistics, files; no frames).

    Raises:
        ConfigError: ``fmt`` is not ``tsv`` or ``parquet``; and as :func:`run_recipe`.
        DataError: ``outdir`` is an existing file, its parent folder does not exist, or the
            files cannot be written there; and as :func:`run_recipe`.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")
    check_outdir(outdir)
    report = run_recipe(dataset, raw_paths, on_step=on_step, **options)
    start = time.perf_counter()
    report.files = write_splits(report.frames, outdir, fmt)
    report.frames = {}
    report.seconds += time.perf_counter() - start
    return report
