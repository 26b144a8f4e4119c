"""Micro-batching of the events endpoint: the events that arrive while a batch runs (or within
one turn of the event loop) share the next tracker step, which runs in the model thread."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

import numpy as np

from gru4rec.inference import Recommendations, SessionTracker

__all__ = ["Batcher", "EventResult"]

# what one event gets back: top-k item ids, their scores, the session length, unknown item
EventResult = tuple[np.ndarray, np.ndarray, int, bool]
_Pending = tuple[str, Any, int, bool, Any, "asyncio.Future[EventResult]"]


class Batcher:
    """Micro-batching of the events endpoint.

    Events wait in a queue; one batch at a time runs as one tracker step (scoring 8 rows at
    once costs ~5 single rows: the fixed costs are shared), and the events that arrived
    meanwhile form the next batch. An idle batcher adds no delay: the first event's batch
    starts on the next turn of the event loop. Events of one session keep their order.

    Args:
        tracker: the live sessions of the served model.
        max_batch: most events per tracker step.
        executor: where the steps run (one thread: steps run one at a time, in order); the
            event loop meanwhile reads, parses and answers other requests, which on a
            burst of events saves their HTTP work from queueing behind the model (the GIL
            is released in the kernels and PyTorch ops). ``None``: on the event loop.
    """

    def __init__(self, tracker: SessionTracker, max_batch: int = 64,
                 executor: Executor | None = None) -> None:
        self.tracker, self.max_batch, self.executor = tracker, max_batch, executor
        self._pending: list[_Pending] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None  # asyncio keeps weak references only

    async def step(self, session_id: str, item: Any, k: int, exclude_seen: bool,
                   user: Any = None) -> EventResult:
        """(items, scores, length, unknown) of this event, once its batch has run; ``user``
        (or None): who clicked, for a new session of a sequence-aware model."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[EventResult] = loop.create_future()
        self._pending.append((session_id, item, k, exclude_seen, user, fut))
        if not self._draining:
            self._draining = True
            loop.call_soon(self._start)  # on the next turn: this turn's events join the batch
        return await fut

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Run batches until no event waits."""
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._pending[:self.max_batch]
                del self._pending[:self.max_batch]
                try:
                    if self.executor is None:
                        res = self._run(batch)
                    else:
                        res = await loop.run_in_executor(self.executor, self._run, batch)
                except Exception as exc:  # noqa: BLE001 - every waiting request gets it
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                lengths = res.lengths
                assert lengths is not None  # SessionTracker.step always reports them
                for j, (_, _, k, _, _, fut) in enumerate(batch):
                    if not fut.done():  # its request may have been cancelled meanwhile
                        fut.set_result((res.items[j, :k], res.scores[j, :k], int(lengths[j]),
                                        bool(res.unknown[j])))
        finally:
            self._draining = False

    def _run(self, batch: list[_Pending]) -> Recommendations:
        return self.tracker.step([b[0] for b in batch], [b[1] for b in batch],
                                 max(b[2] for b in batch), exclude_seen=[b[3] for b in batch],
                                 users=[b[4] for b in batch])
