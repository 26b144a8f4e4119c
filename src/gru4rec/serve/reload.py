"""The served model and its replacement without downtime: on SIGHUP, on
``POST /v1/admin/reload`` and when a watched model file changes.

A reload reads the new file in a worker thread while the event loop keeps answering with the
old model, then swaps the served model in one assignment. A request takes the served model
once, when it starts, so requests in flight finish on the old model. The sessions live in the
store, which outlives the swap: each state names the model that computed it, and the new
model rebuilds a state on its next event by replaying its kept items
(:class:`~gru4rec.inference.SessionTracker`), so no live session is lost.

With several worker processes (``--workers``), every worker reloads in place too: the main
process passes SIGHUP on to each worker (``gru4rec serve``), and ``POST /v1/admin/reload``
reloads the worker that answers it, then sends SIGHUP to the main process for the others;
with ``--watch`` each worker watches the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from gru4rec.errors import ModelFileError
from gru4rec.inference import SessionTracker, model_fingerprint
from gru4rec.model import GRU4Rec
from gru4rec.serve.batcher import Batcher
from gru4rec.serve.settings import ServeSettings
from gru4rec.session_store import SessionStore

__all__ = ["ModelSlot", "ReloadResult", "Served"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One loaded model with what answers for it: its tracker (over the shared store) and
    the micro-batcher of its events."""

    model: GRU4Rec
    sha256: str
    tracker: SessionTracker
    batcher: Batcher
    loaded_at: float

    @property
    def tag(self) -> str:
        """The model's name in session states and the ``X-Gru4rec-Model`` header."""
        return self.sha256[:16]


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: ``reloaded`` (swapped in) or ``unchanged`` (same file contents)."""

    status: str
    sha256: str
    previous_sha256: str


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _signature(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of a file; ``None`` when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _read(path: Path, current_sha: str) -> tuple[GRU4Rec | None, str]:
    """Load a model file on the CPU -> (model without optimiser state, file sha256); the
    model is ``None`` when the file's sha256 is ``current_sha`` (nothing to load).

    Raises:
        ModelFileError: the file is missing or invalid, or changed while it was read.
    """
    before = _signature(path)
    sha = _file_sha256(path) if before is not None else ""
    if before is not None and sha == current_sha:
        return None, sha
    model = GRU4Rec.load(path, device="cpu")
    if _signature(path) != before:
        raise ModelFileError(f"{path} changed while it was read; write a new model to a "
                             "temporary file and rename it over this one, then reload")
    model.optimizer_state_ = None  # only retraining needs it: no RAM for it per worker
    return model, sha


class ModelSlot:
    """Holds the served model (:attr:`current`) and replaces it.

    Args:
        source: the model file (reloadable) or an in-memory model (not reloadable).
        settings: the service options.
        store: the session store, shared by every model this slot serves.
        executor: where the event batches of every served model run (see :class:`Batcher`).
    """

    def __init__(self, source: str | Path | GRU4Rec, settings: ServeSettings,
                 store: SessionStore, executor: Executor | None = None) -> None:
        self.settings, self.store, self.executor = settings, store, executor
        self.path = None if isinstance(source, GRU4Rec) else Path(source)
        if isinstance(source, GRU4Rec):
            self.current = self._serve(source, model_fingerprint(source.net_,
                                                                 source.item_index_))
        else:
            model, sha = _read(Path(source), "")
            assert model is not None
            self.current = self._serve(model, sha)
        self.reloads = 0
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()  # reloads started by signals

    def _serve(self, model: GRU4Rec, sha: str) -> Served:
        tracker = model.session_tracker(self.store, max_items=self.settings.max_session_length,
                                        model_tag=sha[:16])
        log.info("serving %d items (model sha256 %s) with the %s session store",
                 model.n_items, sha[:16], self.store.kind)
        return Served(model, sha, tracker, Batcher(tracker, executor=self.executor),
                      time.time())

    @property
    def source(self) -> str:
        """The model file's path, or ``"in-memory"``."""
        return "in-memory" if self.path is None else str(self.path)

    async def reload(self, reason: str, *, all_workers: bool = False) -> ReloadResult:
        """Read the model file again and serve it (one reload at a time). ``all_workers``
        with several worker processes: then send SIGHUP to the main process, which passes it
        on to every worker (this one finds the file unchanged).

        Raises:
            ModelFileError: the service has no model file, or the file is missing or
                invalid; the current model keeps answering.
        """
        if self.path is None:
            raise ModelFileError("this service was started from an in-memory model: there is "
                                 "no model file to reload")
        res = await self._reload_here(reason, self.path)
        if all_workers and self.settings.workers > 1:
            os.kill(os.getppid(), signal.SIGHUP)  # uvicorn's main process: to every worker
        return res

    async def _reload_here(self, reason: str, path: Path) -> ReloadResult:
        async with self._lock:
            old = self.current
            model, sha = await asyncio.to_thread(_read, path, old.sha256)
            if model is None:
                log.info("%s: %s is unchanged (sha256 %s)", reason, path, sha[:16])
                return ReloadResult("unchanged", sha, old.sha256)
            self.current = self._serve(model, sha)  # requests in flight keep `old`
            self.reloads += 1
            log.info("%s: now serving %s (sha256 %s, was %s)", reason, path, sha[:16],
                     old.sha256[:16])
            return ReloadResult("reloaded", sha, old.sha256)

    async def reload_logged(self, reason: str) -> None:
        """:meth:`reload`, with a failure logged instead of raised (signals, the watcher)."""
        try:
            await self.reload(reason)
        except ModelFileError as exc:
            log.error("%s: reload failed, the current model keeps answering: %s", reason, exc)
        except Exception:  # noqa: BLE001 - a background reload must never stop the service
            log.exception("%s: reload failed, the current model keeps answering", reason)

    async def watch(self, interval: float) -> None:
        """Reload whenever the model file changes (checked every ``interval`` seconds; a new
        version is read once it looks the same on two checks in a row, i.e. is written)."""
        assert self.path is not None
        seen = pending = _signature(self.path)
        while True:
            await asyncio.sleep(interval)
            now = _signature(self.path)
            if now is None or now == seen:
                pending = now
                continue
            if now != pending:  # changed since the last check: maybe still being written
                pending = now
                continue
            seen = now
            await self.reload_logged("model file changed")

    def install_sighup(self) -> bool:
        """Reload on SIGHUP (the main thread's event loop only); True when installed."""
        if self.path is None:
            return False
        loop = asyncio.get_running_loop()

        def on_hup() -> None:
            task = loop.create_task(self.reload_logged("SIGHUP"))
            self._tasks.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._tasks.discard)

        try:
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        except (ValueError, RuntimeError, NotImplementedError, AttributeError):
            return False  # not the main thread (e.g. a test client), or no SIGHUP (Windows)
        return True

    @staticmethod
    def remove_sighup() -> None:
        """Undo :meth:`install_sighup`."""
        try:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        except (ValueError, RuntimeError, NotImplementedError, AttributeError):
            pass

