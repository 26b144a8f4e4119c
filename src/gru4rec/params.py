"""Where hyperparameters come from as text: parameter strings and parameter files.

``loss=bpr-max,layers=100/100`` strings (the ``-ps`` flag), ``.py`` parameter files holding
``gru4rec_params = OrderedDict([...])`` (a baseline's file: ``params = ...``; the ``-pf``
flag; parsed as literals, never executed) and ``.toml`` files. Both return a plain
``{name: value}``; :meth:`gru4rec.config.GRU4RecConfig.from_dict` converts and validates the
values.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

from gru4rec.errors import ConfigError

__all__ = ["parse_param_file", "parse_param_string"]


def parse_param_string(text: str) -> dict[str, str]:
    """Split ``name1=value1,name2=value2`` into an ordered ``{name: value}`` of strings.

    Raises:
        ConfigError: a part is not ``name=value``, or the string holds no parameter.
    """
    params: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ConfigError(
                f"bad parameter {part.strip()!r} in the parameter string; "
                "expected name=value pairs separated by commas (e.g. loss=bpr-max,layers=100)"
            )
        params[name.strip()] = value.strip()
    if not params:
        raise ConfigError("the parameter string is empty; expected name=value pairs")
    return params


def parse_param_file(path: str | Path) -> dict[str, Any]:
    """Read parameters from a ``.py`` file (``gru4rec_params = OrderedDict(...)``, or
    ``params = ...`` in a baseline's file; parsed as literals and never executed) or a
    ``.toml`` file (its ``[gru4rec_params]`` or ``[params]`` table, else its top level
    without a ``model`` key).

    Raises:
        ConfigError: the file cannot be read, has another extension, is not valid Python or
            TOML, lacks ``gru4rec_params``, or holds anything but literal values there.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read parameter file {path}: {exc}") from None
    if path.suffix == ".toml":
        return _parse_toml(path, text)
    if path.suffix != ".py":
        raise ConfigError(f"parameter file {path} must end in .py or .toml")
    return _parse_py(path, text)


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"parameter file {path} is not valid TOML: {exc}") from None
    params = data.get("gru4rec_params", data.get("params"))
    if params is None:
        params = {k: v for k, v in data.items() if k != "model"}
    if not isinstance(params, dict):
        raise ConfigError(f"parameter file {path}: [gru4rec_params] must be a table")
    return params


def _parse_py(path: Path, text: str) -> dict[str, Any]:
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"parameter file {path} is not valid Python: {exc.msg} "
                          f"(line {exc.lineno})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in ("gru4rec_params", "params")
            for t in node.targets
        ):
            return _literal_params(path, node.value)
    raise ConfigError(f"parameter file {path} does not define gru4rec_params "
                      "(expected gru4rec_params = OrderedDict([...]), or params = ... in a "
                      "baseline's file)")


def _literal_params(path: Path, node: ast.expr) -> dict[str, Any]:
    """Evaluate ``OrderedDict([(k, v), ...])``, ``OrderedDict(k=v)``, ``dict(...)`` or
    ``{...}`` as pure literals."""
    try:
        if isinstance(node, ast.Dict):
            return dict(ast.literal_eval(node))
        if isinstance(node, ast.Call) and _call_name(node.func) in ("OrderedDict", "dict"):
            params: dict[str, Any] = {}
            for arg in node.args:
                params.update(dict(ast.literal_eval(arg)))
            for kw in node.keywords:
                if kw.arg is None:
                    raise ValueError("** unpacking")
                params[kw.arg] = ast.literal_eval(kw.value)
            return params
    except (ValueError, TypeError, SyntaxError) as exc:
        raise ConfigError(f"parameter file {path}: gru4rec_params must hold literal values "
                          f"only ({exc})") from None
    raise ConfigError(f"parameter file {path}: gru4rec_params must be an OrderedDict, "
                      "dict or {...} literal")


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""
