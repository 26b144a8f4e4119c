"""Parameter spaces of :func:`gru4rec.tuning.tune`: reading and checking them.

A space lists the hyperparameters to search, one JSON object per line (the format of the
original ``paropt.py``)::

    {"name": "layers", "dtype": "int", "values": [64, 512], "step": 32}
    {"name": "learning_rate", "dtype": "float", "values": [0.01, 0.25], "step": 0.005}
    {"name": "elu_param", "dtype": "categorical", "values": [0.5, 1, 0]}

``dtype`` is ``int``, ``float`` or ``categorical``; ``int`` and ``float`` take ``[low,
high]`` (both included) with an optional ``step`` or ``"log": true``. Lines starting with
``#`` are comments. A ``.toml`` space holds the same as tables named by the parameter
(``[layers]`` ``dtype = "int"`` ...). Every problem of a space is reported in one
:class:`~gru4rec.errors.ConfigError`, before anything is trained.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gru4rec.config import GRU4RecConfig
from gru4rec.errors import ConfigError

if TYPE_CHECKING:
    import optuna

__all__ = ["Param", "read_space", "space_from"]

_DTYPES = ("int", "float", "categorical")
_KEYS = {"name", "dtype", "values", "step", "log"}


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
