"""What a preprocessing recipe is, and what running one reports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gru4rec.data.datasets._output import SplitStats
from gru4rec.data.datasets._protocol import StepCount, Tracker

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["PreprocessReport", "Recipe"]

Runner = Callable[..., "dict[str, pl.DataFrame]"]


@dataclass(frozen=True)
class Recipe:
    """One dataset's preprocessing.

    Args:
        name: the dataset name on the command line.
        summary: one line for ``--help``.
        source: where to download the raw files.
        raw_files: the raw files it takes, as shown in usage messages.
        time_unit: ``s`` or ``ms`` (the unit of the output Time column), or a function of the
            options giving it.
        run: ``run(paths, tracker, **options) -> {split name: frame}``.
        options: the option names ``run`` accepts (besides paths and tracker).
    """

    name: str
    summary: str
    source: str
    raw_files: str
    time_unit: str | Callable[[Mapping[str, Any]], str]
    run: Runner
    options: tuple[str, ...] = ()

    def unit(self, options: Mapping[str, Any]) -> str:
        """The output time unit for these options."""
        return self.time_unit if isinstance(self.time_unit, str) else self.time_unit(options)


@dataclass
class PreprocessReport:
    """What :func:`~gru4rec.data.datasets.preprocess` did.

    Attributes:
        dataset: the recipe's name.
        steps: events, sessions and items left after each step, in order.
        cuts: the split times (``end``, ``test_start``, ``valid_start``, ...), in ``time_unit``.
        splits: statistics of ``train_full``, ``test``, ``train_tr`` and ``train_valid``.
        time_unit: ``s`` or ``ms``.
        files: the written files by split name (empty when nothing was written).
        frames: the splits as polars DataFrames (only from ``run_recipe``).
        seconds: wall time of the whole run.
    """

    dataset: str
    steps: list[StepCount]
    cuts: dict[str, float]
    splits: dict[str, SplitStats]
    time_unit: str
    files: dict[str, Path] = field(default_factory=dict)
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    seconds: float = 0.0

    def step(self, name: str) -> StepCount:
        """The count recorded under ``name``.

        Raises:
            KeyError: no step has that name (the message lists the recorded ones).
        """
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r}; steps: {[s.name for s in self.steps]}")

    @classmethod
    def from_tracker(cls, dataset: str, tracker: Tracker, splits: dict[str, SplitStats],
                     time_unit: str) -> PreprocessReport:
        return cls(dataset=dataset, steps=list(tracker.steps), cuts=dict(tracker.cuts),
                   splits=splits, time_unit=time_unit)
