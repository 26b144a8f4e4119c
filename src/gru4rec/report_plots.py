"""The plots of a run report (:mod:`gru4rec.reports`), drawn with matplotlib (the ``plot``
extra, imported here only): ``training`` (loss and speed per epoch), ``metrics`` (Recall@k
and MRR@k against k, per test set) and ``validation`` (the validation value per epoch, the
best epoch marked)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_report"]

log = logging.getLogger(__name__)


def plot_report(report: Mapping[str, Any], folder: Path, formats: Sequence[str]
                ) -> list[Path]:
    """Draw the report's plots into ``folder`` in each of ``formats``; returns the files.
    Without matplotlib: nothing, and a warning with the install line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning('the report plots need matplotlib: pip install "gru4rec[plot]"')
        return []
    figures = {"metrics": _metrics(plt, report)}
    if report["epochs"]:
        figures["training"] = _training(plt, report)
    if report["validation"] is not None and report["epochs"]:
        figures["validation"] = _validation(plt, report)
    written = []
    for name, fig in figures.items():
        fig.tight_layout()
        for fmt in formats:
            path = folder / f"{name}.{fmt}"
            fig.savefig(path)
            written.append(path)
        plt.close(fig)
    return written


def _training(plt: Any, report: Mapping[str, Any]) -> Any:
    epochs = report["epochs"]
    x = [e["epoch"] for e in epochs]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(x, [e["loss"] for e in epochs], "o-", color="tab:blue", label="loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    speed = ax.twinx()
    speed.plot(x, [e["events_per_s"] for e in epochs], "s--", color="tab:orange")
    speed.set_ylabel("events/s", color="tab:orange")
    ax.set_title(f"{report['model']}: loss and speed per epoch")
    return fig


def _metrics(plt: Any, report: Mapping[str, Any]) -> Any:
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    for result in report["results"]:
        ks = result["cutoffs"]
        for ax, name in zip(axes, ("Recall", "MRR"), strict=True):
            ax.plot(ks, [result["metrics"][f"{name}@{k}"] for k in ks], "o-",
                    label=f"{Path(result['name']).name} ({result['mode']})")
    for ax, name in zip(axes, ("Recall", "MRR"), strict=True):
        ax.set_xlabel("k (list length)")
        ax.set_ylabel(f"{name}@k")
        ax.grid(alpha=0.3)
    if report["results"]:
        axes[0].legend(fontsize="small", loc="lower right")
    fig.suptitle(f"{report['model']}: Recall@k and MRR@k")
    return fig


def _validation(plt: Any, report: Mapping[str, Any]) -> Any:
    epochs = [e for e in report["epochs"] if e["valid"] is not None]
    valid = report["validation"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([e["epoch"] for e in epochs], [e["valid"] for e in epochs], "o-")
    if valid["best_epoch"]:
        ax.axvline(valid["best_epoch"], color="tab:green", linestyle=":",
                   label=f"best: epoch {valid['best_epoch']}")
        ax.legend()
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"valid {valid['metric']}")
    ax.set_title("validation" + (" (stopped early)" if valid["stopped_early"] else ""))
    return fig
