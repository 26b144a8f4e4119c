"""Run reports: one ``metrics.json`` per run (every metric of every test set, the full
config, data statistics, per-epoch training figures and validation values, times, the
machine and versions, the model file's sha256) and plots of it (matplotlib, the ``plot``
extra).

The JSON follows ``REPORT_SCHEMA`` (a JSON Schema, also shipped as
``gru4rec/report.schema.json``); ``schema_version`` says which. ``gru4rec run --report DIR``
writes it; in Python::

    from gru4rec.reports import build_report, write_report
    report = build_report(model, {"test.tsv": result}, train_seconds=12.3)
    write_report("runs/today", report)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from gru4rec.baselines import Baseline
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError
from gru4rec.evaluation import EvalResult
from gru4rec.model import GRU4Rec
from gru4rec.validation import ValidationHistory

__all__ = ["REPORT_FILE", "SCHEMA_VERSION", "build_report", "data_stats", "load_schema",
           "write_report"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
REPORT_FILE = "metrics.json"
PLOT_FORMATS = ("png", "svg")


def load_schema() -> dict[str, Any]:
    """The JSON Schema of ``metrics.json`` (draft 2020-12)."""
    text = resources.files("gru4rec").joinpath("report.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def data_stats(events: Events, path: str | None = None) -> dict[str, Any]:
    """Events, sessions and distinct items of a click log (and where it came from)."""
    return {"path": path, "events": len(events),
            "sessions": int(len(np.unique(events.session))),
            "items": int(len(np.unique(events.item)))}


def build_report(model: GRU4Rec | Baseline, results: Mapping[str, EvalResult], *,
                 train: Mapping[str, Any] | None = None,
                 tests: Mapping[str, Mapping[str, Any]] | None = None,
                 validation: ValidationHistory | None = None, train_seconds: float = 0.0,
                 model_file: str | Path | None = None,
                 command: list[str] | None = None) -> dict[str, Any]:
    """The report of a run as plain values (see the module docstring).

    Args:
        model: the trained (or loaded) model.
        results: the evaluation of each test set, by its name or path.
        train, tests: :func:`data_stats` of the training data and of each test set.
        validation: the per-epoch validation values, when the run had a validation set.
        train_seconds: the time to train (or load) the model.
        model_file: the saved model, whose sha256 is recorded.
        command: the command line of the run.
    """
    kind = model.name if isinstance(model, Baseline) else "gru4rec"
    config = model.get_params() if isinstance(model, Baseline) else model.config.to_dict()
    tests = tests or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command, "model": kind, "config": _plain(config),
        "data": {"train": dict(train) if train else None,
                 "tests": [{**dict(tests.get(name, {})), "name": name,
                            "dropped_events": r.n_dropped_events,
                            "predictions": r.n_predictions} for name, r in results.items()]},
        "epochs": _epochs(model, validation),
        "validation": None if validation is None else {
            "metric": validation.key, "best_epoch": validation.best_epoch,
            "best": validation.best if validation.values else None,
            "stopped_early": validation.stopped_early},
        "results": [{"name": name, "mode": r.mode, "cutoffs": list(r.cutoffs),
                     "metrics": r.metrics, "seconds": r.seconds} for name, r in results.items()],
        "times": {"train_seconds": train_seconds,
                  "eval_seconds": sum(r.seconds for r in results.values())},
        "machine": _machine(model),
        "model_file": None if model_file is None else {
            "path": str(model_file), "sha256": _sha256(Path(model_file))},
    }


def _epochs(model: GRU4Rec | Baseline, validation: ValidationHistory | None
            ) -> list[dict[str, Any]]:
    if isinstance(model, Baseline):
        return []
    values = validation.values if validation is not None else []
    return [{"epoch": r.epoch, "loss": r.loss, "seconds": r.seconds,
             "mb_per_s": r.batches_per_s, "events_per_s": r.events_per_s,
             "valid": values[i] if i < len(values) else None}
            for i, r in enumerate(model.history_)]


def _machine(model: GRU4Rec | Baseline) -> dict[str, Any]:
    import torch

    from gru4rec import __version__
    from gru4rec.kernels import kernels_info

    device = "cpu" if isinstance(model, Baseline) else str(model.device)
    info: dict[str, Any] = {
        "gru4rec": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "numpy": np.__version__, "platform": platform.platform(), "cpu": _cpu(),
        "cores": os.cpu_count(), "threads": torch.get_num_threads(), "device": device,
        "kernels": str(kernels_info())}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """Tuples as lists (JSON has no tuples), recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_report(folder: str | Path, report: Mapping[str, Any], *, plots: bool = True
                 ) -> list[Path]:
    """Write ``metrics.json`` (atomically) and, with ``plots`` and matplotlib installed, the
    plots (PNG and SVG) into ``folder`` (created); returns the files written.

    Raises:
        ConfigError: ``folder`` is a file, or cannot be created.
    """
    folder = Path(folder)
    if folder.is_file():
        raise ConfigError(f"report folder {folder} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the report folder {folder}: {exc}") from None
    path = folder / REPORT_FILE
    tmp = folder / f".{REPORT_FILE}.tmp"
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    written = [path]
    if plots:
        from gru4rec.report_plots import plot_report

        written += plot_report(report, folder, PLOT_FORMATS)
    return written


def read_report(folder: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a run folder (or the file itself).

    Raises:
        DataError: the folder does not exist or holds no report, the report is not JSON,
            or it is of another schema version.
    """
    from gru4rec.errors import DataError

    path = Path(folder)
    if not path.exists():
        raise DataError(f"run folder {folder} does not exist; give a folder written by "
                        "gru4rec run --report DIR")
    path = path / REPORT_FILE if path.is_dir() else path
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"no run report at {folder} (expected {REPORT_FILE}, written by "
                        "gru4rec run --report DIR)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the run report {path}: {exc}") from None
    version = report.get("schema_version") if isinstance(report, dict) else None
    if version != SCHEMA_VERSION:
        raise DataError(f"{path} is not a run report of schema version {SCHEMA_VERSION} "
                        f"(found {version!r})")
    return dict(report)


def report_table(reports: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Several runs side by side: (header, rows) with the run's name, its model, the values
    of the parameters that every run has and that differ between them, every metric of its
    results (prefixed by the test set's file name when the runs have several) and the
    training time."""
    configs = [r["config"] for r in reports.values()]
    shared = sorted(set.intersection(*(set(c) for c in configs))) if configs else []
    differ = [k for k in shared if len({json.dumps(c[k]) for c in configs}) > 1]
    names = {Path(res["name"]).name for r in reports.values() for res in r["results"]}
    metric_cols: list[str] = []
    for r in reports.values():
        for res in r["results"]:
            prefix = f"{Path(res['name']).name} " if len(names) > 1 else ""
            metric_cols += [f"{prefix}{m}" for m in res["metrics"]
                            if f"{prefix}{m}" not in metric_cols]
    header = ["run", "model", *differ, *metric_cols, "train s"]
    rows = []
    for run, r in reports.items():
        values: dict[str, Any] = {}
        for res in r["results"]:
            prefix = f"{Path(res['name']).name} " if len(names) > 1 else ""
            values.update({f"{prefix}{m}": v for m, v in res["metrics"].items()})
        rows.append([run, r["model"], *(r["config"].get(k) for k in differ),
                     *(values.get(c) for c in metric_cols), r["times"]["train_seconds"]])
    return header, rows
