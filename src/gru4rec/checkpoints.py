"""Checkpoints of a training run: written after every epoch, atomically, the last N kept;
a run resumes from the newest valid one and ends with the same weights as a run never
interrupted (same device, same seed).

A checkpoint (``epoch-NNNN.ckpt``, a ``torch.save`` archive of tensors and plain values,
loaded with ``weights_only=True``) holds the trainer's snapshot
(:meth:`gru4rec.training.Trainer.snapshot`: weights, optimiser state, sample store, random
generators, epoch), the epochs' results, the full config and a fingerprint of the training
data. A checkpoint of other data or another config is refused, naming which (``n_epochs``
may differ: a finished run can be resumed for more epochs); an unreadable one (truncated,
foreign) is skipped with a warning naming it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import numpy as np
import torch

from gru4rec.config import GRU4RecConfig
from gru4rec.data.sessions import ItemIndex, SessionData
from gru4rec.errors import ConfigError, DataError
from gru4rec.model_file import save_atomically
from gru4rec.training import EpochResult, Trainer

__all__ = ["CHECKPOINT_FORMAT", "Checkpoints", "GracefulStop", "data_fingerprint"]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "gru4rec-checkpoint"
_NAME = re.compile(r"^epoch-(\d{4,})\.ckpt$")


def data_fingerprint(index: ItemIndex, sessions: SessionData) -> str:
    """sha256 of the item ids and the sessions (their items and boundaries), hex."""
    h = hashlib.sha256()
    ids = index.ids
    h.update(ids.tobytes() if ids.dtype.kind in "iu" else "\0".join(ids.tolist()).encode())
    h.update(np.ascontiguousarray(sessions.items, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(sessions.offsets, dtype=np.int64).tobytes())
    return h.hexdigest()


class Checkpoints:
    """The checkpoints of one run in ``folder`` (created when missing).

    Args:
        folder: where ``epoch-NNNN.ckpt`` files go.
        config: the run's hyperparameters (a checkpoint of another config is refused).
        fingerprint: :func:`data_fingerprint` of the run's data (likewise).
        keep: how many of the newest checkpoints to keep (>= 1).

    Raises:
        ConfigError: ``keep`` < 1, or ``folder`` is a file.
    """

    def __init__(self, folder: str | Path, config: GRU4RecConfig, fingerprint: str,
                 keep: int = 3) -> None:
        if keep < 1:
            raise ConfigError(f"keep_checkpoints must be >= 1, got {keep}")
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"checkpoint folder {self.folder} is a file; give a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config, self.fingerprint, self.keep = config.to_dict(), fingerprint, keep

    def _files(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every checkpoint file, newest first."""
        found = [(int(m.group(1)), p) for p in self.folder.iterdir()
                 if (m := _NAME.match(p.name))]
        return sorted(found, reverse=True)

    def write(self, trainer: Trainer, history: list[EpochResult]) -> Path:
        """Write the checkpoint of the epoch ``trainer`` just finished; drop old ones."""
        payload = {"format": CHECKPOINT_FORMAT, "format_version": 1, "config": self.config,
                   "fingerprint": self.fingerprint,
                   "history": [dataclasses.asdict(r) for r in history],
                   "trainer": trainer.snapshot()}
        path = self.folder / f"epoch-{trainer.epoch:04d}.ckpt"
        save_atomically(payload, path)
        for _, old in self._files()[self.keep:]:
            old.unlink(missing_ok=True)
        log.info("checkpoint %s written", path)
        return path

    def resume(self, trainer: Trainer) -> list[EpochResult] | None:
        """Restore ``trainer`` from the newest readable checkpoint and return the results
        of the epochs it covers; None when there is none.

        Raises:
            DataError: the checkpoint was written for other training data.
            ConfigError: it was written with other hyperparameters (naming them).
        """
        for epoch, path in self._files():
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
                if payload.get("format") != CHECKPOINT_FORMAT:
                    raise ValueError("not a gru4rec checkpoint")
                snap, history = payload["trainer"], payload["history"]
                if int(snap["epoch"]) != epoch:
                    raise ValueError("its epoch does not match its name")
            except Exception:  # truncated, foreign, altered: any of torch's many errors
                log.warning("skipping checkpoint %s: it is truncated, damaged or not a "
                            "gru4rec checkpoint", path)
                continue
            self._check(path, payload)
            trainer.restore(snap)
            log.info("resuming after epoch %d from %s", epoch, path)
            return [EpochResult(**r) for r in history]
        return None

    def _check(self, path: Path, payload: dict[str, Any]) -> None:
        if payload.get("fingerprint") != self.fingerprint:
            raise DataError(f"checkpoint {path} was written for other training data; "
                            "resume with the data it was written for, or give another "
                            "checkpoint folder")
        theirs = payload.get("config", {})
        changed = sorted(k for k in set(theirs) | set(self.config)
                         if k != "n_epochs" and theirs.get(k) != self.config.get(k))
        if changed:
            diff = ", ".join(f"{k} ({theirs.get(k)!r} in the checkpoint, "
                             f"{self.config.get(k)!r} now)" for k in changed)
            raise ConfigError(f"checkpoint {path} was written with other hyperparameters: "
                              f"{diff}; resume with the same ones, or give another "
                              "checkpoint folder")


class GracefulStop:
    """While active (a context manager), the first Ctrl-C (SIGINT) only sets
    :attr:`requested`, so that training stops after the current epoch's checkpoint; a second
    one interrupts at once (the previous checkpoint stays). Inactive outside the main
    thread, where signal handlers cannot be set, and when ``enabled`` is False."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> GracefulStop:
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupted: training stops after this epoch's checkpoint (Ctrl-C "
                    "again to stop now; the last checkpoint stays)")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)
