"""A one-line progress bar on stderr, drawn only when stderr is a terminal.

No dependency: the bar is redrawn in place with a carriage return and cleared when the work
is done, so the lines printed on stdout (epoch results) are never interleaved with it. When
stderr is a file or a pipe (logs, CI, tests) the bar does nothing at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ProgressBar", "fit_with_progress"]

_WIDTH = 24  # characters of the bar itself


def _clock(seconds: float) -> str:
    """``75.4`` -> ``01:15``; hours are shown when needed (``1:02:03``)."""
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    """Callable ``(done, total)`` that draws ``label [####    ]  42% 420/1000 00:03<00:04``.

    Args:
        total_label: text shown before the bar (e.g. ``Epoch3``); may be changed between
            uses through the ``label`` attribute.

    The clock starts when the bar is created and restarts whenever a run completes
    (``done >= total``) or :meth:`clear` is called, so one bar serves every epoch.
    """

    def __init__(self, total_label: str = "") -> None:
        self.label = total_label
        self._start = time.perf_counter()
        self._drawn = 0  # length of the line currently on screen (0 = nothing drawn)

    @staticmethod
    def enabled() -> bool:
        """Whether stderr is an interactive terminal (looked up at every call)."""
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):  # replaced or closed stream
            return False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled():
            return
        if total <= 0 or done >= total:
            self.clear()
            return
        self._draw(self._text(done, total, time.perf_counter() - self._start))

    def _text(self, done: int, total: int, elapsed: float) -> str:
        frac = min(max(done / total, 0.0), 1.0)
        filled = int(frac * _WIDTH)
        eta = elapsed / done * (total - done) if done > 0 else 0.0
        bar = "#" * filled + " " * (_WIDTH - filled)
        prefix = f"{self.label} " if self.label else ""
        return (f"{prefix}[{bar}] {frac:4.0%} {done}/{total} steps "
                f"{_clock(elapsed)} elapsed, ETA {_clock(eta)}")

    def _draw(self, text: str) -> None:
        pad = " " * max(self._drawn - len(text), 0)  # wipe the rest of a longer old line
        sys.stderr.write("\r" + text + pad)
        sys.stderr.flush()
        self._drawn = len(text)

    def clear(self) -> None:
        """Erase the bar (if drawn) and restart the timer for the next run."""
        if self._drawn and self.enabled():
            sys.stderr.write("\r" + " " * self._drawn + "\r")
            sys.stderr.flush()
        self._drawn = 0
        self._start = time.perf_counter()


def fit_with_progress(model: Any, data: Any, say: Callable[[str], None],
                      validation: Any = None, record: dict[str, Any] | None = None,
                      **fit_args: Any) -> float:
    """Train ``model`` on ``data`` printing the original's epoch lines through ``say``, with
    a progress bar inside each epoch; returns the training time in seconds. ``fit_args`` go
    to ``fit`` (e.g. ``retrain=True``). With a :class:`~gru4rec.validation.Validation`, each
    epoch line ends with the validation value, and the best epoch is reported at the end
    (its weights are the ones kept); ``record["validation"]`` then receives the
    :class:`~gru4rec.validation.ValidationHistory`."""
    bar = ProgressBar("Epoch1")

    def next_epoch(result: Any, suffix: str = "") -> None:
        bar.clear()
        say(result.line() + suffix)
        bar.label = f"Epoch{result.epoch + 1}"

    start = time.perf_counter()
    try:
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
    finally:
        bar.clear()
    return time.perf_counter() - start
