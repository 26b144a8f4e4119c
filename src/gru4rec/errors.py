"""The exception hierarchy of gru4rec.

Every error the library raises on purpose derives from :class:`GRU4RecError`, and its
message says what went wrong and how to fix it::

    GRU4RecError
    ├── ConfigError              bad or unknown hyperparameter / run option
    ├── DataError                unreadable, malformed or empty event data
    ├── NotFittedError           a model used before ``fit`` or ``load``
    ├── TrainingDivergedError    the loss became NaN or infinite during training
    ├── ModelFileError           a model file that is truncated, tampered with or foreign
    └── StoreUnavailableError    the session store (Redis) cannot be reached

The command line maps all of them to a one-line message and exit code 2.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "DataError",
    "GRU4RecError",
    "ModelFileError",
    "NotFittedError",
    "StoreUnavailableError",
    "TrainingDivergedError",
]


class GRU4RecError(Exception):
    """Base class of every error raised on purpose by gru4rec."""


class ConfigError(GRU4RecError, ValueError):
    """A hyperparameter or run option is unknown, ill-typed or out of range.

    Attributes:
        problems: every problem found, one line each (validation reports them all at once);
            ``[message]`` when the error was raised for a single problem.
    """

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems is not None else [message]


class DataError(GRU4RecError, ValueError):
    """Event data cannot be read or does not have the required shape."""


class NotFittedError(GRU4RecError, RuntimeError):
    """The model has not been trained (or loaded) yet."""


class TrainingDivergedError(GRU4RecError, RuntimeError):
    """The training loss became NaN or infinite."""


class ModelFileError(GRU4RecError, ValueError):
    """A model file cannot be loaded safely."""


class StoreUnavailableError(GRU4RecError, RuntimeError):
    """The session store (e.g. Redis) cannot be reached; the message names it."""
