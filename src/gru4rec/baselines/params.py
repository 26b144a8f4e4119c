"""Hyperparameters of the baselines: each model declares its parameters as
``{name: Param(default, converter, doc)}``; values from Python, parameter strings (text) and
parameter files are converted and checked by the same converters, and every problem is
reported at once (:class:`~gru4rec.errors.ConfigError`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gru4rec.errors import ConfigError

__all__ = ["Param", "boolean", "choice", "check_params", "integer", "number", "optional",
           "switch_or_number"]

Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its default, the converter that checks a given value (raising
    ValueError with a reason) and a one-line description."""

    default: Any
    convert: Converter
    doc: str


def integer(low: int | None = None, high: int | None = None) -> Converter:
    """An int (or its text) within [low, high]."""
    def convert(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError("expected an integer, got a boolean")
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        try:
            value = int(raw) if isinstance(raw, int | str) else None
        except ValueError:
            value = None
        if value is None:
            raise ValueError(f"expected an integer, got {raw!r}")
        _check_range(value, low, high)
        return value
    return convert


def number(low: float | None = None, high: float | None = None) -> Converter:
    """A float (or its text) within [low, high]."""
    def convert(raw: Any) -> float:
        if isinstance(raw, bool):
            raise ValueError("expected a number, got a boolean")
        try:
            value = float(raw) if isinstance(raw, int | float | str) else None
        except ValueError:
            value = None
        if value is None or value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number, got {raw!r}")
        _check_range(value, low, high)
        return value
    return convert


def _check_range(value: float, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise ValueError(f"must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"must be <= {high}, got {value}")


def boolean(raw: Any) -> bool:
    """True/False (or their text, any case, or 1/0)."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"expected True or False, got {raw!r}")


def choice(*values: str) -> Converter:
    """One of ``values`` (text, exact)."""
    def convert(raw: Any) -> str:
        if not isinstance(raw, str) or raw not in values:
            raise ValueError(f"expected one of {', '.join(values)}; got {raw!r}")
        return raw
    return convert


def optional(inner: Converter) -> Converter:
    """None (or the text None / none / an empty string), else ``inner``'s value."""
    def convert(raw: Any) -> Any:
        if raw is None or (isinstance(raw, str) and raw.strip() in ("", "None", "none")):
            return None
        return inner(raw)
    return convert


def switch_or_number(low: float = 0.0) -> Converter:
    """False (off), True (= 1.0) or a number >= low: session-rec's ``idf_weighting`` style."""
    num = number(low)

    def convert(raw: Any) -> float | bool:
        if isinstance(raw, bool):
            return 1.0 if raw else False
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return 1.0 if raw.strip().lower() == "true" else False
        value = num(raw)
        return value if value else False
    return convert


def check_params(model: str, spec: Mapping[str, Param], given: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """Every parameter of ``spec`` with its value: the converted given one, else the default.

    Raises:
        ConfigError: unknown names or bad values, all of them listed in one error.
    """
    problems = []
    values = {name: p.default for name, p in spec.items()}
    for name, raw in given.items():
        if name not in spec:
            valid = ", ".join(spec) or "none"
            problems.append(f"unknown parameter {name!r} for {model} (its parameters: {valid})")
            continue
        try:
            values[name] = spec[name].convert(raw)
        except ValueError as exc:
            problems.append(f"{model} parameter {name}: {exc}")
    if problems:
        raise ConfigError("; ".join(problems), problems)
    return values
