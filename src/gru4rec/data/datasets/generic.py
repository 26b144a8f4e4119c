"""generic: your own click log under the RecSys 2023 protocol, every knob an option.

Source: any event log with a header: ``.csv`` (comma), ``.tsv``/``.txt`` (tab) or
``.parquet``; several files are read as one log (same columns).

Raw format: one event per row with a session (or user) column, an item column and a time
column; other columns are ignored (or used by ``event_filter``)::

    SessionId,ItemId,Time
    1,214536502,1396867869.277

Options (defaults in brackets):

- ``session_col`` [SessionId] or ``user_col`` (then sessions are derived: a new session
  where a user's gap between events is strictly over ``session_gap`` seconds [3600]);
  derived sessions are numbered 1, 2, ... by (user id, session start);
- ``item_col`` [ItemId], ``time_col`` [Time];
- ``time_unit`` [s]: the unit of numeric times (``s`` or ``ms``), used to convert the gap
  and the test window; or ``time_format``: a strftime format (e.g. ``%Y-%m-%d %H:%M:%S``)
  for text times, read as UTC unless the format has ``%z``, written as float epoch seconds
  with the millisecond fraction;
- ``event_filter`` [none]: ``column=value`` strings; only rows where every such column
  (compared as text) equals its value are kept;
- ``min_item_support`` [5], ``min_session_length`` [2]: the thresholds of the filtering
  (repeated until stable) and of the split steps (which use ``min_session_length`` where
  the protocol says "length 1" / "shorter than 2");
- ``dedup`` [True]: drop consecutive repeats of an item within a session;
- ``test_days`` [1]: T = the latest time after filtering, test = sessions starting in the
  last ``test_days`` days, train_tr / train_valid the same ``test_days`` earlier; or
  ``test_fraction``: test = the latest sessions by first event, ``test_fraction`` of them
  (rounded, at least one; sessions starting at the same time as the first test session are
  test too), then the same fraction of train_full's sessions for train_valid;
- ``keep_user`` [False] (with ``user_col``): write the user column (``UserId``) too, for
  sequence-aware training. Either split is by time: a user's sessions that start before
  the cut are training, the later ones test;
- ``split_by_time`` [False]: split at the cut by event time instead: every event before
  it is training and every later one test, so a session that spans the cut is cut in two
  (with ``test_days``; ``test_fraction`` cuts by session start).

Ids that are all canonical integers in a text file become integers (others stay text);
numeric times that are all whole numbers are written as integers, others as floats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gru4rec.data.datasets._protocol import (
    DAY,
    ITEM,
    SESSION,
    TIME,
    Tracker,
    clean,
    derive_sessions,
    latest,
    number,
    split_pair,
)
from gru4rec.data.datasets._raw import Field, RawFormat, check_files, read_raw
from gru4rec.data.datasets._recipe import Recipe
from gru4rec.data.events import CANONICAL_INT_REGEX
from gru4rec.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["OPTIONS", "RECIPE", "run"]

SOURCE = "your own data (a .csv, .tsv/.txt or .parquet event log with a header)"
USER = "_user"
OPTIONS = ("session_col", "user_col", "item_col", "time_col", "time_unit", "time_format",
           "session_gap", "event_filter", "min_item_support", "min_session_length", "dedup",
           "test_days", "test_fraction", "separator", "keep_user", "split_by_time")
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
_NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"


def _problems(o: Mapping[str, Any]) -> list[str]:
    """Every problem with the options (all listed at once)."""
    found = []
    if o.get("session_col") and o.get("user_col"):
        found.append("give session_col or user_col, not both")
    if o.get("split_by_time") and o.get("test_fraction") is not None:
        found.append("split_by_time cuts at a time (test_days); test_fraction counts whole "
                     "sessions, give one or the other")
    if o.get("keep_user") and not o.get("user_col"):
        found.append("keep_user needs user_col (the users whose events are cut into sessions)")
    if o.get("test_days") is not None and o.get("test_fraction") is not None:
        found.append("give test_days or test_fraction, not both")
    if o.get("test_days") is not None and not o["test_days"] > 0:
        found.append(f"test_days must be > 0, got {o['test_days']}")
    if o.get("test_fraction") is not None and not 0 < o["test_fraction"] < 1:
        found.append(f"test_fraction must be between 0 and 1, got {o['test_fraction']}")
    if o.get("time_unit", "s") not in DAY:
        found.append(f"time_unit must be s or ms, got {o['time_unit']!r}")
    if not o.get("session_gap", 3600) > 0:
        found.append(f"session_gap must be > 0 seconds, got {o['session_gap']}")
    for key in ("min_item_support", "min_session_length"):
        if not (isinstance(o.get(key, 1), int) and o.get(key, 1) >= 1):
            found.append(f"{key} must be an integer >= 1, got {o[key]!r}")
    found += [f"event_filter {f!r} is not column=value" for f in o.get("event_filter") or ()
              if "=" not in f]
    return found


def _filters(o: Mapping[str, Any]) -> dict[str, str]:
    return dict(f.split("=", 1) for f in o.get("event_filter") or ())


def _columns(o: Mapping[str, Any]) -> dict[str, str]:
    """Output/working column -> raw column name."""
    group = (USER, o["user_col"]) if o.get("user_col") else (SESSION,
                                                            o.get("session_col") or SESSION)
    return {group[0]: group[1], ITEM: o.get("item_col") or ITEM, TIME: o.get("time_col") or TIME}


def _format(path: Path, o: Mapping[str, Any]) -> RawFormat:
    cols = _columns(o)
    needed = tuple(dict.fromkeys([*cols.values(), *_filters(o)]))
    sep = o.get("separator") or _SEPARATORS.get(path.suffix.lower(), ",")
    example = sep.join({SESSION: "1", USER: "1", ITEM: "214536502",
                        TIME: "2014-04-07 10:51:09" if o.get("time_format") else "1396867869"}[k]
                       for k in cols)
    patterns = {} if o.get("time_format") else {cols[TIME]: _NUMBER}
    return RawFormat(name="generic event log", separator=sep, columns=tuple(cols.values()),
                     header=True, example=example, patterns=patterns, required=needed)


def _time_field(o: Mapping[str, Any], raw: str) -> Field:

    fmt = o.get("time_format")
    if fmt:
        def parse(e: pl.Expr) -> pl.Expr:
            return e.str.to_datetime(fmt, time_unit="ms", strict=False).dt.epoch("ms")
        return Field(raw, TIME, "String", f"a time in the format {fmt!r}", fast=parse,
                     text=parse)
    return Field(raw, TIME, "Float64", "a number")


def _keep(filters: dict[str, str]) -> Any:
    import polars as pl

    if not filters:
        return None
    return lambda lf: lf.filter(pl.all_horizontal(pl.col(c).cast(pl.String) == v
                                                  for c, v in filters.items()))


def _read_one(path: Path, o: Mapping[str, Any]) -> pl.DataFrame:
    cols = _columns(o)
    fields = [Field(cols[k], k, "String", "an id") for k in cols if k != TIME]
    fields.append(_time_field(o, cols[TIME]))
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path, _format(path, o), cols, _keep(_filters(o)))
    return read_raw(path, _format(path, o), fields, keep=_keep(_filters(o)))


def _read_parquet(path: Path, fmt: RawFormat, cols: dict[str, str], keep: Any) -> pl.DataFrame:
    import polars as pl

    try:
        lf = pl.scan_parquet(path)
        names = lf.collect_schema().names()
        missing = [c for c in fmt.required if c not in names]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)} (the columns are "
                            f"{', '.join(names)}); name them with --session-col/--user-col, "
                            "--item-col, --time-col")
        lf = keep(lf) if keep else lf
        frame = lf.select(pl.col(raw).alias(k) for k, raw in cols.items()).collect()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{path}: cannot be read as Parquet: {str(exc).splitlines()[0]}; give "
                        "a .parquet file with the session, item and time columns") from None
    return frame


def _ids(frame: pl.DataFrame) -> pl.DataFrame:
    """Text id columns made of canonical integers only (as
    :func:`~gru4rec.data.events.is_canonical_int` says) become Int64, unless a value does not
    fit in 64 bits (then the column stays text, as in :func:`gru4rec.data.io.read_events`)."""
    import polars as pl

    for name in (c for c in (SESSION, USER, ITEM) if c in frame.columns):
        column = frame.get_column(name)
        if column.dtype == pl.String and column.str.contains(CANONICAL_INT_REGEX).all():
            ints = column.cast(pl.Int64, strict=False)
            if ints.null_count() == column.null_count():  # every value fits in int64
                frame = frame.with_columns(ints)
    return frame


def _times(frame: pl.DataFrame, o: Mapping[str, Any], path: Path) -> pl.DataFrame:
    """Time as float seconds (formatted times), Int64 (whole numbers) or Float64."""
    import polars as pl

    time = frame.get_column(TIME)
    if o.get("time_format") and time.dtype == pl.String:  # Parquet text times
        time = time.str.to_datetime(o["time_format"], time_unit="ms", strict=False)
        if time.null_count():
            raise DataError(f"{path}: {time.null_count():,} times do not match the format "
                            f"{o['time_format']!r}; fix --time-format")
    if isinstance(time.dtype, pl.Datetime):
        time = time.dt.epoch("ms")
    if o.get("time_format") or isinstance(frame.get_column(TIME).dtype, pl.Datetime):
        return frame.with_columns(pl.Series(TIME, time.to_numpy() / 1000))  # exact rounding
    if not time.dtype.is_numeric():
        time = time.cast(pl.Float64, strict=False)
        if time.null_count():
            raise DataError(f"{path}: time column {o.get('time_col') or TIME} holds values "
                            "that are not numbers; give --time-format for text times")
    if time.dtype.is_float() and (time == time.round(0)).all() \
            and number(time.abs().max()) < 2**53:
        time = time.cast(pl.Int64)
    return frame.with_columns(time.alias(TIME))


def _fraction_cut(frame: pl.DataFrame, fraction: float) -> float:
    """The first-event time from which the latest ``fraction`` of the sessions start."""
    import polars as pl

    starts = frame.group_by(SESSION).agg(pl.col(TIME).min()).sort([TIME, SESSION])
    if starts.height == 0:
        return 0
    n_test = max(1, round(fraction * starts.height))
    return number(starts.get_column(TIME)[starts.height - n_test])


def run(paths: Sequence[str | Path], tracker: Tracker, **o: Any) -> dict[str, pl.DataFrame]:
    """The generic recipe (see the module docstring for the options)."""
    import polars as pl

    problems = _problems(o)
    if problems:
        raise ConfigError("; ".join(problems))
    first = Path(paths[0]) if paths else Path("events.csv")
    files = check_files(paths, _format(first, o), "generic", (1, None), SOURCE)
    frames = [_times(_ids(_read_one(path, o)), o, path) for path in files]
    frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")
    group = USER if o.get("user_col") else SESSION
    name = "events kept (" + ", ".join(o["event_filter"]) + ")" if o.get("event_filter") \
        else "read"
    tracker.record(name, frame, session=group)
    unit = time_unit(o)
    if o.get("user_col"):
        gap = o.get("session_gap", 3600) * (1000 if unit == "ms" else 1)
        frame = tracker.record("sessions (gap)", derive_sessions(
            frame, USER, gap, keep_user=bool(o.get("keep_user"))))
    length = o.get("min_session_length", 2)
    frame = clean(frame, tracker, min_length=length, min_support=o.get("min_item_support", 5),
                  dedup=o.get("dedup", True))
    if o.get("test_fraction") is not None:
        cut = _fraction_cut(frame, o["test_fraction"])
        full, test = split_pair(frame, tracker, cut, ("train_full", "test"), length)
        valid_cut = _fraction_cut(full, o["test_fraction"])
    else:
        window = (o.get("test_days") or 1) * DAY[unit]
        end = latest(frame)
        cut, valid_cut = end - window, end - 2 * window
        tracker.cuts["end"] = end
        full, test = split_pair(frame, tracker, cut, ("train_full", "test"), length,
                                by_event=bool(o.get("split_by_time")))
    tracker.cuts.update({"test_start": cut, "valid_start": valid_cut})
    tr, valid = split_pair(full, tracker, valid_cut, ("train_tr", "train_valid"), length,
                           by_event=bool(o.get("split_by_time")))
    return {"train_full": full, "test": test, "train_tr": tr, "train_valid": valid}


def time_unit(o: Mapping[str, Any]) -> str:
    """The unit of the output times for these options."""
    return "s" if o.get("time_format") else o.get("time_unit") or "s"


RECIPE = Recipe(
    name="generic", summary="your own CSV/TSV/Parquet log, RecSys 2023 protocol with options",
    source=SOURCE, raw_files="EVENTS.csv|.tsv|.parquet ...", time_unit=time_unit, run=run,
    options=OPTIONS,
)
