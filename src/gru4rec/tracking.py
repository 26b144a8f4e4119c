"""Experiment tracking with MLflow (the ``track`` extra, imported lazily): a run's report
(:mod:`gru4rec.reports`) becomes one MLflow run with the parameters, the per-epoch metrics
(step = epoch), the final metrics, the report's files and the model file as artifacts.

Where it goes: any MLflow tracking URI (``http://host:5000``, ``sqlite:///mlflow.db``,
``databricks``, a ``file:`` folder); by default a local ``mlruns/`` folder, holding the
SQLite database ``mlruns/mlflow.db`` and the artifacts. MLflow 3 refuses its legacy file
store unless asked: naming a ``file:`` URI or a plain folder counts as asking, so
``MLFLOW_ALLOW_FILE_STORE`` is set for it. MLflow metric names cannot hold ``@``:
``Recall@20`` is logged as ``Recall_at_20`` (prefixed by the test file's name when a run
has several test sets).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gru4rec.errors import ConfigError

__all__ = ["DEFAULT_URI", "metric_name", "require_mlflow", "track_run"]

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
_EXPERIMENT = "gru4rec"


def require_mlflow() -> Any:
    """The ``mlflow`` module.

    Raises:
        ConfigError: MLflow is not installed (the message has the install line).
    """
    try:
        import mlflow
    except ImportError:
        raise ConfigError('tracking needs MLflow: pip install "gru4rec[track]"') from None
    return mlflow


def metric_name(key: str, test: str | None = None) -> str:
    """An MLflow metric name for ``Recall@20`` (and the test set it was measured on)."""
    name = key.replace("@", "_at_")
    return name if test is None else f"{Path(test).name}/{name}"


def _uri(uri: str | None) -> str:
    """The tracking URI to use, creating the default local folder."""
    if uri is None:
        Path("mlruns").mkdir(exist_ok=True)
        return DEFAULT_URI
    if uri.startswith("file:") or "://" not in uri and uri != "databricks":
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # asked for by name
    return uri


def track_run(report: Mapping[str, Any], files: Sequence[Path], *, uri: str | None = None,
              experiment: str = _EXPERIMENT, run_name: str | None = None) -> str:
    """Log a run report to MLflow; returns the MLflow run id.

    Args:
        report: the run's report (:func:`gru4rec.reports.build_report`).
        files: the report's files (metrics.json, plots), logged under ``report/``; the
            report's model file, when there is one, is logged under ``model/``.
        uri: the tracking URI (None: the local ``mlruns/`` folder, see the module).

    Raises:
        ConfigError: MLflow is not installed, or the tracking URI is not usable.
    """
    mlflow = require_mlflow()
    try:
        client = mlflow.tracking.MlflowClient(_uri(uri))
        found = client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(exp_id, run_name=run_name,
                                tags={"gru4rec.model": str(report["model"])})
    except mlflow.exceptions.MlflowException as exc:
        raise ConfigError(f"cannot log to MLflow at {uri or DEFAULT_URI}: {exc}") from None
    run_id: str = run.info.run_id
    params = {k: str(v)[:6000] for k, v in report["config"].items()}  # MLflow's value limit
    params["model"] = str(report["model"])
    client.log_batch(run_id, metrics=_metrics(mlflow, report),
                     params=[mlflow.entities.Param(k, v) for k, v in params.items()])
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path="report")
    if report.get("model_file"):
        client.log_artifact(run_id, report["model_file"]["path"], artifact_path="model")
    client.set_terminated(run_id)
    return run_id


def _metrics(mlflow: Any, report: Mapping[str, Any]) -> list[Any]:
    """Per-epoch (step = epoch) and final metrics as MLflow Metric entities."""
    now = 0  # timestamps in ms; the steps order the history
    metric = mlflow.entities.Metric
    out = []
    for e in report["epochs"]:
        out += [metric("loss", e["loss"], now, e["epoch"]),
                metric("events_per_s", e["events_per_s"], now, e["epoch"])]
        if e["valid"] is not None:
            key = metric_name(report["validation"]["metric"])
            out.append(metric(f"valid/{key}", e["valid"], now, e["epoch"]))
    several = len(report["results"]) > 1
    for result in report["results"]:
        for key, value in result["metrics"].items():
            name = metric_name(key, result["name"] if several else None)
            out.append(metric(name, value, now, 0))
    out.append(metric("train_seconds", report["times"]["train_seconds"], now, 0))
    return out
