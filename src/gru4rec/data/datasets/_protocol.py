"""The preprocessing steps the recipes share, on polars frames ``SessionId, ItemId, Time``.

Every step is a vectorised polars expression (no Python loop over rows). Frames stay sorted
by ``(SessionId, Time, ItemId)`` from :func:`sort_events` on, and every step keeps that order,
so the splits come out in that order too. A :class:`Tracker` records the events, sessions and
items left after each step (the report the CLI prints and the tests check).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gru4rec.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = [
    "USER_OUT",
    "ITEM", "SESSION", "SPLITS", "TIME", "StepCount", "Tracker", "check_splits", "clean",
    "derive_sessions", "drop_rare_items", "drop_repeats", "drop_short_sessions",
    "filter_until_stable", "keep_known_items", "latest", "number", "recsys2023_splits",
    "sort_events", "user_view_splits",
    "split_by_end", "split_by_event_time", "split_by_start", "split_pair",
]

SESSION, ITEM, TIME = "SessionId", "ItemId", "Time"
USER_OUT = "UserId"  # the user column of the outputs (--keep-user)
SPLITS = ("train_full", "test", "train_tr", "train_valid")
DAY = {"s": 86_400, "ms": 86_400_000}
HOUR = {"s": 3_600, "ms": 3_600_000}


@dataclass(frozen=True)
class StepCount:
    """What is left after one step: events, sessions and distinct items."""

    name: str
    events: int
    sessions: int
    items: int

    def line(self) -> str:
        return (f"{self.name}: {self.events:,} events, {self.sessions:,} sessions, "
                f"{self.items:,} items")


@dataclass
class Tracker:
    """Collects a :class:`StepCount` per step and the cut times; ``on_step(step, seconds)``
    is called after each step with the seconds elapsed since the tracker was made."""

    on_step: Callable[[StepCount, float], None] | None = None
    steps: list[StepCount] = field(default_factory=list)
    cuts: dict[str, float] = field(default_factory=dict)
    start: float = field(default_factory=time.perf_counter)

    def record(self, name: str, frame: pl.DataFrame, session: str = SESSION) -> pl.DataFrame:
        """Count ``frame`` under ``name`` and return it unchanged (``session``: the column
        counted as sessions, e.g. the user column before sessions are derived)."""
        import polars as pl

        counts = frame.select(pl.len(), pl.col(session).n_unique(), pl.col(ITEM).n_unique())
        step = StepCount(name, *(int(v) for v in counts.row(0)))
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step, time.perf_counter() - self.start)
        return frame


def sort_events(frame: pl.DataFrame) -> pl.DataFrame:
    """Sort by (SessionId, Time, ItemId): the order every later step keeps."""
    return frame.sort([SESSION, TIME, ITEM])


def derive_sessions(frame: pl.DataFrame, user: str, gap: float, *,
                    keep_user: bool = False) -> pl.DataFrame:
    """Cut each user's events (in time order) into sessions where the time to the previous
    event is strictly greater than ``gap``.

    Sessions are numbered 1, 2, ... in the order of (user id, session start time), so the
    ids depend only on the data, not on the file order. The user column is dropped, or kept
    as :data:`USER_OUT` with ``keep_user``.
    """
    import polars as pl

    frame = frame.sort([user, TIME])
    new = (pl.col(user) != pl.col(user).shift(1)) | (pl.col(TIME) - pl.col(TIME).shift(1) > gap)
    return frame.select(new.fill_null(True).cum_sum().cast(pl.Int64).alias(SESSION),
                        pl.col(ITEM), pl.col(TIME),
                        *([pl.col(user).alias(USER_OUT)] if keep_user else []))


def drop_repeats(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop an event whose item equals the previous event's item in the same session (the
    frame must be sorted by :func:`sort_events`)."""
    import polars as pl

    same_session = pl.col(SESSION) == pl.col(SESSION).shift(1)
    repeat = (pl.col(ITEM) == pl.col(ITEM).shift(1)) & same_session
    return frame.filter(~repeat.fill_null(False))


def drop_short_sessions(frame: pl.DataFrame, min_length: int) -> pl.DataFrame:
    """Drop the sessions with fewer than ``min_length`` events."""
    import polars as pl

    return frame.filter(pl.len().over(SESSION) >= min_length)


def drop_rare_items(frame: pl.DataFrame, min_support: int) -> pl.DataFrame:
    """Drop the events of items with fewer than ``min_support`` events."""
    import polars as pl

    return frame.filter(pl.len().over(ITEM) >= min_support)


def filter_until_stable(frame: pl.DataFrame, tracker: Tracker, min_length: int = 2,
                        min_support: int = 5) -> pl.DataFrame:
    """Repeat (drop short sessions, then rare items) until a round removes nothing."""
    round_ = 0
    while True:
        round_ += 1
        before = frame.height
        frame = tracker.record(f"round {round_}: sessions >= {min_length}",
                               drop_short_sessions(frame, min_length))
        frame = tracker.record(f"round {round_}: items >= {min_support}",
                               drop_rare_items(frame, min_support))
        if frame.height == before:
            return frame


def split_by_start(frame: pl.DataFrame, cut: float, min_length: int = 2,
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(before, after): sessions whose first event is at or after ``cut`` go after, whole;
    of the others only the events before ``cut`` are kept, then sessions shorter than
    ``min_length`` are dropped."""
    import polars as pl

    # One window pass, then two cheap filters on the flag column.
    marked = frame.with_columns((pl.col(TIME).min().over(SESSION) >= cut).alias("_late"))
    after = marked.filter(pl.col("_late")).drop("_late")
    before = marked.filter(~pl.col("_late") & (pl.col(TIME) < cut)).drop("_late")
    return drop_short_sessions(before, min_length), after


def split_by_event_time(frame: pl.DataFrame, cut: float, min_length: int = 2,
                        ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(before, after): every event before ``cut`` goes before and every other one after,
    so a session that spans the cut is cut in two; then sessions shorter than
    ``min_length`` are dropped from ``before`` (``after`` is filtered by the caller)."""
    import polars as pl

    late = pl.col(TIME) >= cut
    return drop_short_sessions(frame.filter(~late), min_length), frame.filter(late)


def split_by_end(frame: pl.DataFrame, cut: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(before, after): sessions whose last event is at or after ``cut`` go after; the
    others before (whole sessions either way)."""
    import polars as pl

    marked = frame.with_columns((pl.col(TIME).max().over(SESSION) >= cut).alias("_late"))
    late = pl.col("_late")
    return marked.filter(~late).drop("_late"), marked.filter(late).drop("_late")


def keep_known_items(frame: pl.DataFrame, known: pl.DataFrame, min_length: int = 2,
                     ) -> pl.DataFrame:
    """Drop the events of items absent from ``known``, then sessions shorter than
    ``min_length`` (nothing else: repeats this creates are kept)."""
    import polars as pl

    frame = frame.filter(pl.col(ITEM).is_in(known.get_column(ITEM).unique().implode()))
    return drop_short_sessions(frame, min_length)


def split_pair(frame: pl.DataFrame, tracker: Tracker, cut: float, names: tuple[str, str],
               min_length: int = 2, *, by_event: bool = False
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Steps 5 (and 6) of the RecSys 2023 protocol at ``cut``: (train, test) named ``names``;
    test sessions start at or after ``cut``, train keeps the other sessions' events before
    it, then short sessions are dropped; test keeps items known to train, then length.
    ``by_event``: every event at or after ``cut`` is test (:func:`split_by_event_time`)."""
    if by_event:
        train, test = split_by_event_time(frame, cut, min_length)
        tracker.record(f"{names[1]} (events >= cut)", test)
    else:
        train, test = split_by_start(frame, cut, min_length)
        tracker.record(f"{names[1]} (sessions starting >= cut)", test)
    train = tracker.record(names[0], train)
    test = tracker.record(names[1], keep_known_items(test, train, min_length))
    return train, test


def clean(frame: pl.DataFrame, tracker: Tracker, *, min_length: int = 2, min_support: int = 5,
          dedup: bool = True) -> pl.DataFrame:
    """Steps 3-4 of the RecSys 2023 protocol: sort, drop consecutive repeats (if ``dedup``),
    then filter sessions and items until stable."""
    frame = sort_events(frame)
    if dedup:
        frame = tracker.record("consecutive repeats removed", drop_repeats(frame))
    return filter_until_stable(frame, tracker, min_length, min_support)


def number(value: object) -> float:
    """A polars scalar that must be a number (an aggregate of a numeric column), unchanged:
    int stays int (typed as float, which accepts ints). TypeError for anything else."""
    if isinstance(value, int | float):
        return value
    raise TypeError(f"expected a number, got {value!r}")


def latest(frame: pl.DataFrame) -> float:
    """The latest time in ``frame`` (0 when empty)."""
    return number(frame.get_column(TIME).max()) if frame.height else 0


def recsys2023_splits(frame: pl.DataFrame, tracker: Tracker, *, end: float | None,
                      window: float, min_length: int = 2, min_support: int = 5,
                      dedup: bool = True) -> dict[str, pl.DataFrame]:
    """Steps 3-6 of the RecSys 2023 protocol on view events with sessions.

    :func:`clean`; then test = sessions starting at or after ``end - window`` (``end=None``:
    the latest time left after cleaning) and train_full = the other sessions' events before
    it; then the same at ``end - 2 * window`` inside train_full gives train_tr / train_valid
    (see :func:`split_pair`).
    """
    frame = clean(frame, tracker, min_length=min_length, min_support=min_support, dedup=dedup)
    end = latest(frame) if end is None else end
    tracker.cuts.update({"end": end, "test_start": end - window, "valid_start": end - 2 * window})
    full, test = split_pair(frame, tracker, end - window, ("train_full", "test"), min_length)
    tr, valid = split_pair(full, tracker, end - 2 * window, ("train_tr", "train_valid"),
                           min_length)
    return {"train_full": full, "test": test, "train_tr": tr, "train_valid": valid}


def user_view_splits(frame: pl.DataFrame, tracker: Tracker, user: str, unit: str, *,
                     end: float | None, window: float,
                     keep_user: bool = False) -> dict[str, pl.DataFrame]:
    """Steps 2-6 of the RecSys 2023 protocol on view events keyed by ``user`` (a user id, or
    a raw session id that is cut further): count them, start a new session after a gap of
    more than 1 hour (``unit``: the unit of the times), then :func:`recsys2023_splits`.
    ``keep_user``: the splits keep the user column (:data:`USER_OUT`)."""
    tracker.record("view events", frame, session=user)  # sessions = the raw keys here
    frame = tracker.record("sessions (1 hour gap)",
                           derive_sessions(frame, user, HOUR[unit], keep_user=keep_user))
    return recsys2023_splits(frame, tracker, end=end, window=window)


def check_splits(splits: dict[str, pl.DataFrame], dataset: str) -> None:
    """Raise DataError when train_full or test came out empty (too little data)."""
    for name in ("train_full", "test"):
        if splits[name].height == 0:
            raise DataError(f"{dataset}: the {name} split is empty after filtering; the raw "
                            "data is too small or too short in time for this protocol (give "
                            "the complete raw files)")
