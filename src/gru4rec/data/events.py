"""The in-memory form of a session click log (three aligned NumPy columns), and the rule
that says when an id written as text is an integer.

The rule is one for the whole package: reading a text file (:func:`gru4rec.data.io.read_events`),
the preprocessing recipes, and every place that receives item ids as text for a model
trained on integer ids (:func:`gru4rec.inference.coerce_ids`, so the HTTP service and
``gru4rec recommend``) treat ``"42"`` as the integer 42 and ``"042"``, ``"+42"``, ``"-0"`` or
``" 42"`` as text. Only the canonical spelling counts, the one ``str(int)`` gives back, so
an id survives the round trip int -> text -> int unchanged and two spellings never name
the same item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["CANONICAL_INT_REGEX", "Events", "is_canonical_int", "subsample_sessions"]

_CANONICAL_INT = "0|-?[1-9][0-9]*"
# The same rule for the regex engines of pyarrow and polars (which match the whole value).
CANONICAL_INT_REGEX = f"^({_CANONICAL_INT})$"
_CANONICAL_INT_RE = re.compile(_CANONICAL_INT)


def is_canonical_int(text: str) -> bool:
    """Whether ``text`` is the canonical decimal spelling of an integer (``"42"``, ``"-7"``,
    ``"0"``; not ``"042"``, ``"+4"``, ``"-0"``, ``"4 "`` or ``"4\\n"``)."""
    return _CANONICAL_INT_RE.fullmatch(text) is not None


@dataclass(frozen=True)
class Events:
    """Events of a click log, one row per event, all arrays of equal length N.

    Attributes:
        session: (N,) session ids, any dtype (int64 or object strings); used for grouping only.
        item: (N,) item ids exactly as given: int64 when the source had integers, else object
            array of ``str`` (or the source's own dtype for DataFrames/Parquet).
        time: (N,) float64 timestamps (any unit; only the order matters).
        user: (N,) user ids (any dtype), or None when the log has no user column; with
            ``session_boundary=carry`` each user's events form one sequence.
    """

    session: np.ndarray
    item: np.ndarray
    time: np.ndarray
    user: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def select(self, rows: np.ndarray) -> Events:
        """The events at ``rows`` ((N,) bool mask or integer positions), every column."""
        return Events(self.session[rows], self.item[rows], self.time[rows],
                      None if self.user is None else self.user[rows])


def subsample_sessions(events: Events, max_events: int | None, seed: int = 0) -> Events:
    """A fixed random subset of whole sessions of ``events`` with at most ``max_events``
    events (all of them when ``max_events`` is None or not smaller)."""
    if max_events is None or len(events.item) <= max_events:
        return events
    sessions, inverse, counts = np.unique(events.session, return_inverse=True,
                                          return_counts=True)
    order = np.random.default_rng(seed).permutation(len(sessions))
    keep = np.zeros(len(sessions), dtype=bool)
    keep[order[np.cumsum(counts[order]) <= max_events]] = True
    return events.select(keep[inverse.reshape(-1)])
