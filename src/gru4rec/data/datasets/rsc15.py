"""rsc15: the preprocessing of the original GRU4Rec paper (Hidasi et al., ICLR 2016).

Source: the RecSys Challenge 2015 data by YOOCHOOSE (``yoochoose-data.7z`` from the
challenge's page, https://recsys.acm.org/recsys15/challenge/; mirrored on Kaggle as
"RecSys Challenge 2015"); this recipe reads ``yoochoose-clicks.dat`` only.

Raw format: comma separated, no header, four fields per line::

    session_id,timestamp,item_id,category
    1,2014-04-07T10:51:09.277Z,214536502,0

session id and item id are integers, the timestamp is ISO-8601 UTC with milliseconds and a
``Z``, the category (``0``, ``S`` or a number) is ignored.

Protocol (one pass, nothing iterated, no de-duplication):

1. Time = epoch seconds as a float with the millisecond fraction (``1396867869.277``);
   written in the shortest form that reads back to the same float.
2. Drop sessions of length 1; then items with fewer than 5 events; then sessions shorter
   than 2.
3. tmax = the latest time left; test = the sessions whose last event is at or after
   tmax - 86400 s, train_full = the other sessions (whole sessions on both sides).
4. Test events whose item is not in train_full are dropped, then test sessions shorter than 2.
5. train_tr / train_valid: steps 3-4 applied to train_full (its own tmax).

Choices where the paper is silent: rows are output sorted by (SessionId, Time, ItemId);
repeats created by step 4 are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gru4rec.data.datasets._protocol import (
    ITEM,
    SESSION,
    TIME,
    Tracker,
    drop_rare_items,
    drop_short_sessions,
    keep_known_items,
    number,
    sort_events,
    split_by_end,
)
from gru4rec.data.datasets._raw import Field, RawFormat, check_files, check_head, read_raw
from gru4rec.data.datasets._recipe import Recipe
from gru4rec.data.datasets._time import iso_ms, iso_ms_text

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["RECIPE", "run"]

SOURCE = ("the RecSys Challenge 2015 page, https://recsys.acm.org/recsys15/challenge/ "
          "(yoochoose-data.7z, also on Kaggle as 'RecSys Challenge 2015')")
DAY_S = 86_400

CLICKS = RawFormat(
    name="yoochoose-clicks.dat", separator=",", header=False,
    columns=("session_id", "timestamp", "item_id", "category"),
    example="1,2014-04-07T10:51:09.277Z,214536502,0",
    patterns={"session_id": r"\d+", "item_id": r"\d+",
              "timestamp": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"},
    required=("session_id", "timestamp", "item_id"),
)
FIELDS = (
    Field("session_id", SESSION, "Int64", "an integer"),
    Field("item_id", ITEM, "Int64", "an integer"),
    Field("timestamp", TIME, "String", "a timestamp like 2014-04-07T10:51:09.277Z",
          fast=iso_ms, text=iso_ms_text),
)


def _read_arrow(path: Path) -> pl.DataFrame | None:
    """Fast path: pyarrow's multithreaded CSV reader parses the ISO timestamps natively
    (about 3x faster than any polars expression on them); None if anything is off."""
    import polars as pl
    import pyarrow as pa
    from pyarrow import csv

    check_head(path, CLICKS)
    types = {"session_id": pa.int64(), "timestamp": pa.timestamp("ms", tz="UTC"),
             "item_id": pa.int64()}
    try:
        table = csv.read_csv(path, read_options=csv.ReadOptions(column_names=CLICKS.columns),
                             convert_options=csv.ConvertOptions(
                                 column_types=types, include_columns=list(types),
                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # the polars reader finds the problem and names its line
    if any(column.null_count for column in table.columns):
        return None
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # a Table always converts to a DataFrame
    return frame.select(pl.col("session_id").alias(SESSION), pl.col("item_id").alias(ITEM),
                        pl.col("timestamp").dt.epoch("ms").alias(TIME))


def _read_clicks_file(path: Path) -> pl.DataFrame:
    """One clicks file: the fast pyarrow path, else the checked polars reader."""
    frame = _read_arrow(path)
    return frame if frame is not None else read_raw(path, CLICKS, FIELDS)


def read_clicks(paths: Sequence[Path]) -> pl.DataFrame:
    """Read yoochoose-clicks.dat-format files into one frame sorted by session, time, item."""
    import polars as pl

    frames = [_read_clicks_file(path) for path in paths]
    frame = frames[0] if len(frames) == 1 else pl.concat(frames)
    # NumPy's division is correctly rounded (polars multiplies by the reciprocal, which can
    # be one ulp off): 1396867869277 ms -> 1396867869.277 exactly as written.
    seconds = pl.Series(TIME, frame.get_column(TIME).to_numpy() / 1000)
    return sort_events(frame.with_columns(seconds))


def last_day_split(frame: pl.DataFrame, tracker: Tracker, names: tuple[str, str],
                   prefix: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split off the sessions ending in the last day of ``frame``; keep known items only."""
    end = float(number(frame.get_column(TIME).max()))
    tracker.cuts.update({f"{prefix}end": end, f"{prefix}start": end - DAY_S})
    train, test = split_by_end(frame, end - DAY_S)
    train = tracker.record(names[0], train)
    tracker.record(f"{names[1]} (sessions ending >= cut)", test)
    return train, tracker.record(names[1], keep_known_items(test, train, 2))


def run(paths: Sequence[str | Path], tracker: Tracker) -> dict[str, pl.DataFrame]:
    """The rsc15 recipe (see the module docstring)."""
    (path,) = check_files(paths, CLICKS, "rsc15", (1, 1), SOURCE)
    frame = tracker.record("read", read_clicks([path]))
    frame = tracker.record("sessions >= 2", drop_short_sessions(frame, 2))
    frame = tracker.record("items >= 5", drop_rare_items(frame, 5))
    frame = tracker.record("sessions >= 2 (again)", drop_short_sessions(frame, 2))
    full, test = last_day_split(frame, tracker, ("train_full", "test"), "test_")
    train, valid = last_day_split(full, tracker, ("train_tr", "train_valid"), "valid_")
    return {"train_full": full, "test": test, "train_tr": train, "train_valid": valid}


RECIPE = Recipe(
    name="rsc15", summary="RecSys Challenge 2015 clicks, the original GRU4Rec paper's split",
    source=SOURCE, raw_files="yoochoose-clicks.dat", time_unit="s", run=run,
)
