"""diginetica: DIGINETICA (CIKM Cup 2016) item views under the RecSys 2023 protocol.

Source: the CIKM Cup 2016 Track 2 "Personalized E-Commerce Search Challenge" data by
DIGINETICA (https://competitions.codalab.org/competitions/11161, ``dataset-train-diginetica.zip``),
file ``train-item-views.csv``.

Raw format: semicolon separated with a header line::

    sessionId;userId;itemId;timeframe;eventdate
    1;;81766;526309;2016-05-09

userId is often empty and is not read; timeframe is milliseconds since the session started;
eventdate is a calendar day.

Protocol (RecSys 2023, as in ``yoochoose``):

1. every row is a view event; the sessions are the given sessionId;
2. Time (integer ms) = midnight UTC of the session's earliest eventdate + timeframe (one
   origin per session, so a session crossing midnight keeps its order);
3. consecutive repeats removed; 4. sessions of length 1 and items with fewer than 5 events
   dropped until nothing changes;
5. T = the latest time left after step 4, d = 7 days; 6. train_tr / train_valid at T - 2d.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gru4rec.data.datasets._protocol import (
    DAY,
    ITEM,
    SESSION,
    TIME,
    Tracker,
    recsys2023_splits,
)
from gru4rec.data.datasets._raw import Field, RawFormat, check_files, read_all
from gru4rec.data.datasets._recipe import Recipe
from gru4rec.data.datasets._time import date_days, date_days_text

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["RECIPE", "run"]

SOURCE = ("the CIKM Cup 2016 Track 2 (DIGINETICA) page, "
          "https://competitions.codalab.org/competitions/11161 (train-item-views.csv)")

VIEWS = RawFormat(
    name="DIGINETICA train-item-views.csv", separator=";", header=True,
    columns=("sessionId", "userId", "itemId", "timeframe", "eventdate"),
    example="1;;81766;526309;2016-05-09",
    patterns={"sessionId": r"\d+", "itemId": r"\d+", "timeframe": r"\d+",
              "eventdate": r"\d{4}-\d\d-\d\d"},
    required=("sessionId", "itemId", "timeframe", "eventdate"),
)
FIELDS = (
    Field("sessionId", SESSION, "Int64", "an integer"),
    Field("itemId", ITEM, "Int64", "an integer"),
    Field("timeframe", "timeframe", "Int64", "an integer (milliseconds)"),
    Field("eventdate", "day", "String", "a date like 2016-05-09", fast=date_days,
          text=date_days_text),
)


def _times(frame: pl.DataFrame) -> pl.DataFrame:
    """Time = the session's first day (midnight UTC, in ms) + timeframe."""
    import polars as pl

    start = pl.col("day").min().over(SESSION) * DAY["ms"]
    return frame.select(SESSION, ITEM, (start + pl.col("timeframe")).alias(TIME))


def run(paths: Sequence[str | Path], tracker: Tracker) -> dict[str, pl.DataFrame]:
    """The diginetica recipe (see the module docstring)."""
    files = check_files(paths, VIEWS, "diginetica", (1, 1), SOURCE)
    frame = tracker.record("read", _times(read_all(files, VIEWS, FIELDS)))
    return recsys2023_splits(frame, tracker, end=None, window=7 * DAY["ms"])


RECIPE = Recipe(
    name="diginetica", summary="DIGINETICA (CIKM Cup 2016) item views, RecSys 2023 protocol "
                               "(7-day test)",
    source=SOURCE, raw_files="train-item-views.csv", time_unit="ms", run=run,
)
