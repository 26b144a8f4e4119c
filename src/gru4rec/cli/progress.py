"""Progress bars of the long commands (training, evaluation, preprocessing, batch
recommendations, tuning), drawn by tqdm on stderr, and only when stderr is a terminal.

Every bar is transient (``leave=False``): it is wiped when its work is done (or before a line
is printed), so the lines printed on stdout (epoch results, metrics) are never interleaved
with it. When stderr is a file or a pipe (logs, CI, tests) a bar writes nothing at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any, Protocol

from tqdm import tqdm  # type: ignore[import-untyped]

__all__ = ["Bar", "StepProgress", "fit_with_progress", "is_terminal", "progress_bar"]


class Bar(Protocol):
    """The part of a tqdm bar the commands use."""

    n: float
    total: float | None

    def update(self, n: float = 1) -> bool | None:
        """Add ``n`` to the count (redrawn at most a few times a second)."""

    def set_description_str(self, desc: str | None = None, refresh: bool = True) -> None:
        """Replace the text shown before the bar."""

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Replace the text shown after the bar."""

    def clear(self, nolock: bool = False) -> None:
        """Wipe the bar from the screen (it is drawn again by the next update)."""

    def refresh(self, nolock: bool = False, lock_args: Any = None) -> None:
        """Draw the bar now."""

    def close(self) -> None:
        """Wipe the bar for good."""

    def __enter__(self) -> Bar:
        """The bar itself."""

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the bar."""


def is_terminal(stream: IO[str] | None) -> bool:
    """Whether ``stream`` is an interactive terminal (False for a closed, missing or
    replaced stream without ``isatty``)."""
    try:
        return stream is not None and bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", *,
                 enabled: bool = True, bar_format: str | None = None) -> Bar:
    """A transient tqdm bar on stderr, disabled (no output at all) unless ``enabled`` and
    stderr is a terminal when the bar is made. ``total`` None: a counter without a bar.
    Close it (or use it as a context manager) to wipe it."""
    bar: Bar = tqdm(total=total, desc=desc or None, unit=unit, file=sys.stderr, leave=False,
                    dynamic_ncols=True, bar_format=bar_format,
                    disable=not (enabled and is_terminal(sys.stderr)))
    return bar


class StepProgress:
    """A ``(done, total)`` callback (the ``progress`` of ``fit`` and ``evaluate``) that shows
    a tqdm bar labelled ``label`` (an attribute: it may change between calls).

    The bar opens on the first call, is wiped when ``done >= total`` or on :meth:`close`,
    and a later call (``done`` back below the count shown, or another ``total``) opens a
    fresh one, with its own clock, so one object serves every epoch. Usable as a context
    manager that closes it, e.g. when the work raises. ``enabled`` False: never drawn.
    """

    def __init__(self, label: str = "", unit: str = "step", *, enabled: bool = True) -> None:
        self.label = label
        self.unit = unit
        self.enabled = enabled
        self._bar: Bar | None = None
        self._shown = label  # the label of the open bar

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total``; at the end (``done >= total``) wipe the bar."""
        if total <= 0 or done >= total:
            self.close()
            return
        bar = self._bar
        if bar is None or bar.total != total or done < bar.n:
            self.close()
            bar = self._bar = progress_bar(total, self.label, self.unit, enabled=self.enabled)
            self._shown = self.label
        elif self.label != self._shown:
            bar.set_description_str(self.label, refresh=False)
            self._shown = self.label
        bar.update(done - bar.n)

    def close(self) -> None:
        """Wipe the bar, if one is shown."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def fit_with_progress(model: Any, data: Any, say: Callable[[str], None],
                      validation: Any = None, record: dict[str, Any] | None = None,
                      **fit_args: Any) -> float:
    """Train ``model`` on ``data`` printing the original's epoch lines through ``say``, with
    a progress bar inside each epoch; returns the training time in seconds. ``fit_args`` go
    to ``fit`` (e.g. ``retrain=True``). With a :class:`~gru4rec.validation.Validation`, each
    epoch line ends with the validation value, and the best epoch is reported at the end
    (its weights are the ones kept); ``record["validation"]`` then receives the
    :class:`~gru4rec.validation.ValidationHistory`."""
    bar = StepProgress("Epoch1")

    def next_epoch(result: Any, suffix: str = "") -> None:
        bar.close()
        say(result.line() + suffix)
        bar.label = f"Epoch{result.epoch + 1}"

    start = time.perf_counter()
    with bar:
        if validation is None:
            model.fit(data, on_epoch=next_epoch, progress=bar, **fit_args)
        else:
            from gru4rec.validation import fit_validated

            history = fit_validated(
                model, data, validation, progress=bar, **fit_args,
                on_epoch=lambda r, v: next_epoch(r, f" | valid {validation.key}: {v:.6f}"))
            stop = (f"; stopped after epoch {len(history.values)} (patience "
                    f"{validation.patience})" if history.stopped_early else "")
            say(f"Best epoch: {history.best_epoch} (valid {history.key}: "
                f"{history.best:.6f}), its weights kept{stop}")
            if record is not None:
                record["validation"] = history
    return time.perf_counter() - start
