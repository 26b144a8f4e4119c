"""What ``run`` and ``compare`` share about choosing a model: the model names, where a
model's parameters come from (a parameter string or file, which may name its model), and
loading a saved file of either kind (GRU4Rec or a baseline)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gru4rec.baselines import MODELS
from gru4rec.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from gru4rec.baselines import Baseline
    from gru4rec.comparison import ModelSpec
    from gru4rec.model import GRU4Rec

__all__ = ["MODEL_NAMES", "file_model", "load_any", "parse_spec"]

MODEL_NAMES = ("gru4rec", *MODELS)


def file_model(path: str | Path) -> str | None:
    """The model a parameter file names (``model = "vsknn"`` in a .py file, or a top-level
    ``model`` key in a .toml file), or None when it names none (GRU4Rec's files).

    Raises:
        ConfigError: the file cannot be read or parsed, or names an unknown model.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read parameter file {path}: {exc}") from None
    name: Any = None
    try:
        if path.suffix == ".toml":
            name = tomllib.loads(text).get("model")
        else:
            for node in ast.parse(text).body:
                if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "model" for t in node.targets):
                    name = ast.literal_eval(node.value)
    except (SyntaxError, ValueError, tomllib.TOMLDecodeError):
        return None  # parse_param_file reports the file's problem
    if name is not None and name not in MODEL_NAMES:
        raise ConfigError(f"parameter file {path} names the unknown model {name!r}; the "
                          f"models are {', '.join(MODEL_NAMES)}")
    return None if name is None else str(name)


def parse_spec(text: str) -> ModelSpec:
    """A ``compare --models`` entry: ``NAME``, ``NAME:FILE`` (.py/.toml parameter file),
    ``NAME:a=1,b=2`` (a parameter string), or a FILE that names its model.

    Raises:
        ConfigError: an unknown model, a parameter file that does not exist or names
            another model, or a bad parameter string.
    """
    from gru4rec.comparison import ModelSpec
    from gru4rec.params import parse_param_file, parse_param_string

    name, sep, rest = text.partition(":")
    if not sep and Path(text).suffix in (".py", ".toml"):
        if not Path(text).is_file():
            raise ConfigError(f"parameter file {text} does not exist")
        found = file_model(text) or "gru4rec"
        return ModelSpec(found, parse_param_file(text), text, _label(found, text))
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r} in {text!r}; the models are "
                          f"{', '.join(MODEL_NAMES)} (NAME, NAME:PARAM_FILE or "
                          "NAME:a=1,b=2)")
    if not sep or not rest:
        return ModelSpec(name, {}, None, name)
    if Path(rest).suffix in (".py", ".toml"):
        if not Path(rest).is_file():
            raise ConfigError(f"parameter file {rest} (for {name}) does not exist")
        named = file_model(rest)
        if named not in (None, name):
            raise ConfigError(f"parameter file {rest} is for {named}, not {name}")
        return ModelSpec(name, parse_param_file(rest), rest, _label(name, rest))
    return ModelSpec(name, dict(parse_param_string(rest)), None, text)


def _label(name: str, path: str) -> str:
    """How tables name a model from a parameter file: the file's stem when it starts with
    the model's name (``vsknn_rsc15_100k``), else ``name:stem``."""
    stem = Path(path).stem
    return stem if stem.startswith(name) else f"{name}:{stem}"


def load_any(path: str | Path, device: str | None = None) -> GRU4Rec | Baseline:
    """Load a model file saved by ``GRU4Rec.save`` or a baseline's ``save``.

    Raises:
        ModelFileError: the file is neither (or is damaged); ConfigError: a bad device.
    """
    from gru4rec.baselines import Baseline
    from gru4rec.errors import ModelFileError
    from gru4rec.model import GRU4Rec

    try:
        return GRU4Rec.load(path, device=device)
    except ModelFileError as exc:
        if "is a baseline model file" not in str(exc):
            raise
    return Baseline.load(path)
