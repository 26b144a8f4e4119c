"""Item index and session grouping: from raw events to dense item indices per session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gru4rec.data.events import Events
from gru4rec.errors import DataError

__all__ = ["ItemIndex", "SessionData", "group_sequences", "group_sessions"]


class ItemIndex:
    """Map between item ids (opaque labels, kept exactly) and dense indices 0..n_items-1.

    Args:
        ids: (n_items,) distinct item ids; position = index.
    """

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = _as_id_array(ids)
        order = np.argsort(self.ids, kind="stable")
        self._sorted = self.ids[order]
        self._sorted_pos = order
        if len(self._sorted) > 1 and np.any(self._sorted[1:] == self._sorted[:-1]):
            raise DataError("item ids of an item index must be distinct")

    @classmethod
    def from_items(cls, items: np.ndarray) -> ItemIndex:
        """Index the distinct ids of ``items`` (N,) in order of first appearance."""
        items = _as_id_array(items)
        _, first = np.unique(items, return_index=True)
        return cls(items[np.sort(first)])

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def lookup(self, items: np.ndarray) -> np.ndarray:
        """(N,) item ids -> (N,) int64 indices, -1 for ids not in the index."""
        items = _as_id_array(items)
        if len(items) == 0 or len(self) == 0:
            return np.full(len(items), -1, dtype=np.int64)
        if items.dtype.kind != self._sorted.dtype.kind:
            if self._sorted.dtype.kind != "U":  # str ids never match an int index
                return np.full(len(items), -1, dtype=np.int64)
            items = items.astype(str)  # int ids match a str index through their text
        pos = np.searchsorted(self._sorted, items)
        pos = np.minimum(pos, len(self._sorted) - 1)
        found = self._sorted[pos] == items
        return np.where(found, self._sorted_pos[pos], -1).astype(np.int64)

    def extended(self, items: np.ndarray) -> tuple[ItemIndex, int]:
        """This index followed by the ids of ``items`` (N,) it lacks, in order of first
        appearance -> (new index, number of ids added). Known ids keep their indices.

        Raises:
            DataError: ``items`` are strings and this index holds integers.
        """
        items = _as_id_array(items)
        if items.dtype.kind != self.ids.dtype.kind:
            if self.ids.dtype.kind != "U":
                raise DataError("the new data's item ids are strings, the model's are "
                                "integers; give the item column as integers")
            items = items.astype(str)  # int ids join a str index as their text
        new = ItemIndex.from_items(items[self.lookup(items) < 0]).ids
        return ItemIndex(np.concatenate([self.ids, new])), int(len(new))

    def to_list(self) -> list[int] | list[str]:
        """The ids as a plain Python list (ints or strs), e.g. for the model file."""
        ids: list[int] | list[str] = self.ids.tolist()
        return ids


def _as_id_array(ids: np.ndarray | Sequence[Any]) -> np.ndarray:
    """Ids as int64 or unicode arrays (object arrays of str become fixed-width unicode)."""
    arr = np.asarray(ids)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "O":
        arr = arr.astype(str)
    if arr.dtype.kind != "U":
        raise DataError(f"item ids must be integers or strings, got dtype {arr.dtype}")
    return arr


@dataclass(frozen=True)
class SessionData:
    """Sessions as contiguous runs of item indices, in visiting order.

    Attributes:
        items: (N,) int64 item indices, sessions back to back, events in time order.
        offsets: (n_sessions + 1,) int64; session s spans items[offsets[s]:offsets[s+1]].
        session_ids: (n_sessions,) the original session ids, in the same order.
    """

    items: np.ndarray
    offsets: np.ndarray
    session_ids: np.ndarray

    @property
    def n_sessions(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def n_examples(self) -> int:
        """Number of next-item examples: events minus sessions."""
        return int(self.items.shape[0] - self.n_sessions)


def group_sessions(events: Events, item_index: ItemIndex, *, time_sort: bool = True,
                   drop_unknown: bool = True) -> tuple[SessionData, int]:
    """Group events into sessions ordered by (session, time), sessions by first-event time.

    Events whose item is not in ``item_index`` are dropped (their count is returned); the
    rest of their session is kept. Sessions left with fewer than 1 event vanish.

    Returns:
        (sessions, n_dropped_events)
    """
    sessions, n_dropped, _ = _group(events.session, events, item_index, time_sort,
                                    drop_unknown)
    return sessions, n_dropped


def group_sequences(events: Events, item_index: ItemIndex, *, time_sort: bool = True,
                    drop_unknown: bool = True) -> tuple[SessionData, np.ndarray, int]:
    """Group events into one sequence per user (``events.user``): the user's sessions
    whole, in the order of their first events, each in time order; users by their first
    event's time. Unknown items are dropped as in :func:`group_sessions`. (Sessions are
    kept whole, so the next-item pairs within sessions are those of :func:`group_sessions`
    even where two sessions of a user overlap in time.)

    Returns:
        (sequences: a :class:`SessionData` whose sessions are the users' sequences and
        whose ``session_ids`` are the user ids, starts: (N,) bool, True where an event
        begins a session (of ``events.session``) within its sequence, n_dropped_events)

    Raises:
        DataError: the events have no user column.
    """
    if events.user is None:
        raise DataError("sequences need a user column: give user_key (CLI: -uk/--user_key)")
    _, codes = np.unique(events.session, return_inverse=True)
    codes = codes.reshape(-1)
    first = np.full(int(codes.max()) + 1 if len(codes) else 0, np.inf)
    np.minimum.at(first, codes, events.time)
    sequences, n_dropped, sess = _group(events.user, events, item_index, time_sort,
                                        drop_unknown, codes, (first[codes], codes))
    starts = np.ones(len(sess), dtype=bool)
    starts[1:] = sess[1:] != sess[:-1]
    starts[sequences.offsets[:-1]] = True
    return sequences, starts, n_dropped


def _group(groups: np.ndarray, events: Events, item_index: ItemIndex, time_sort: bool,
           drop_unknown: bool, carried: np.ndarray | None = None,
           within: tuple[np.ndarray, ...] = ()) -> tuple[SessionData, int, np.ndarray]:
    """Group events by ``groups`` (N,) ordered by (group, ``within`` keys, time), groups by
    first-event time; also ``carried`` (N,) reordered the same way (or an empty array)."""
    idx = item_index.lookup(events.item)
    known = idx >= 0
    n_dropped = int((~known).sum()) if drop_unknown else 0
    sess = groups[known]
    _, codes = np.unique(sess, return_inverse=True)
    times = events.time[known]
    keys = [k[known] for k in reversed(within)]
    order = np.lexsort((times, *keys, codes))  # stable: ties in time keep file order
    codes, times, items = codes[order], times[order], idx[known][order]
    extra = carried[known][order] if carried is not None else np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.diff(codes, prepend=-1))
    offsets = np.r_[starts, len(codes)].astype(np.int64)
    if time_sort and len(starts):
        sess_order = np.argsort(times[starts], kind="stable")
        if carried is not None:
            extra, _ = _reorder(extra, offsets, sess_order)
        items, offsets = _reorder(items, offsets, sess_order)
        starts = starts[sess_order]
    session_ids = sess[order][starts] if len(starts) else sess[:0]
    return SessionData(items.astype(np.int64), offsets, session_ids), n_dropped, extra


def _reorder(items: np.ndarray, offsets: np.ndarray,
             order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder whole sessions: (items, offsets) with sessions permuted by ``order``."""
    lengths = np.diff(offsets)[order]
    new_offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    # position of every output event in the input: session start + rank within session
    within = np.arange(len(items)) - np.repeat(new_offsets[:-1], lengths)
    src = np.repeat(offsets[:-1][order], lengths) + within
    return items[src], new_offsets
