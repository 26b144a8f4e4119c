"""Micro-batching of the events endpoint: the events that arrive within one turn of the event
loop share one tracker step."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from gru4rec.inference import SessionTracker

__all__ = ["Batcher", "EventResult"]

# what one event gets back: top-k item ids, their scores, the session length, unknown item
EventResult = tuple[np.ndarray, np.ndarray, int, bool]


class Batcher:
    """Micro-batching of the events endpoint: the events that arrive within one turn of the
    event loop share one tracker step. Scoring 8 rows at once costs ~5 single rows (the
    fixed costs are shared), so a busy worker serves more; an idle one adds no delay (the
    flush is the next callback of the loop). Events of one session keep their order."""

    def __init__(self, tracker: SessionTracker, max_batch: int = 64) -> None:
        self.tracker, self.max_batch = tracker, max_batch
        self._pending: list[tuple[str, Any, int, bool, Any,
                                  asyncio.Future[EventResult]]] = []

    async def step(self, session_id: str, item: Any, k: int, exclude_seen: bool,
                   user: Any = None) -> EventResult:
        """(items, scores, length, unknown) of this event, once its batch has run; ``user``
        (or None): who clicked, for a new session of a sequence-aware model."""
        fut: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        self._pending.append((session_id, item, k, exclude_seen, user, fut))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        elif len(self._pending) >= self.max_batch:
            self._flush()
        return await fut

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            res = self.tracker.step([b[0] for b in batch], [b[1] for b in batch],
                                    max(b[2] for b in batch),
                                    exclude_seen=[b[3] for b in batch],
                                    users=[b[4] for b in batch])
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for *_, fut in batch:
                fut.set_exception(exc)
            return
        lengths = res.lengths
        assert lengths is not None  # SessionTracker.step always reports them
        for j, (_, _, k, _, _, fut) in enumerate(batch):
            fut.set_result((res.items[j, :k], res.scores[j, :k], int(lengths[j]),
                            bool(res.unknown[j])))
