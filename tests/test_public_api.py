"""The public API: ``gru4rec.__all__`` is the documented set, every name in it imports, every
error of the package is re-exported, and ``import gru4rec`` stays light."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import subprocess
import sys

import pytest

import gru4rec
from gru4rec.errors import GRU4RecError

PUBLIC_API = [
    "ConfigError",
    "DataError",
    "EvalResult",
    "GRU4Rec",
    "GRU4RecConfig",
    "GRU4RecError",
    "ModelFileError",
    "NotFittedError",
    "StoreUnavailableError",
    "TrainingDivergedError",
    "__version__",
    "evaluate",
]
# what a bare ``import gru4rec`` must not pull in (optional extras and torch)
HEAVY = ("fastapi", "polars", "pandas", "redis", "uvicorn", "torch")
OPTIONAL = ("fastapi", "starlette", "pydantic", "uvicorn", "redis", "orjson", "polars", "pandas")


def test_all_is_the_documented_public_api() -> None:
    assert sorted(gru4rec.__all__) == sorted(PUBLIC_API)
    assert len(set(gru4rec.__all__)) == len(gru4rec.__all__)


@pytest.mark.parametrize("name", PUBLIC_API)
def test_every_public_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from gru4rec import {name}", namespace)  # the import statement itself
    assert namespace[name] is getattr(gru4rec, name)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from gru4rec import *", namespace)
    assert sorted(n for n in namespace if n != "__builtins__") == sorted(PUBLIC_API)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = gru4rec.nope  # type: ignore[attr-defined]


def _package_error_classes() -> set[type[GRU4RecError]]:
    """Every GRU4RecError subclass defined in any module of the package."""
    found: set[type[GRU4RecError]] = set()
    for info in pkgutil.walk_packages(gru4rec.__path__, prefix="gru4rec."):
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec is not None else None
        if info.name.endswith("__main__") or not (origin or "").endswith(".py"):
            continue  # the entry point, and compiled libraries that are not Python modules
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # a module of an extra that is not installed
            if (exc.name or "").split(".")[0] in OPTIONAL:
                continue
            raise
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, GRU4RecError) and obj.__module__ == module.__name__:
                found.add(obj)
    return found


def test_every_error_class_is_reexported() -> None:
    errors = _package_error_classes()
    assert {e.__name__ for e in errors} >= {"GRU4RecError", "StoreUnavailableError"}
    for error in errors:
        assert error.__name__ in gru4rec.__all__, f"{error.__module__}.{error.__name__}"
        assert getattr(gru4rec, error.__name__) is error


def test_import_gru4rec_stays_light() -> None:
    code = ("import sys, gru4rec\n"
            f"heavy = {HEAVY!r}\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout
