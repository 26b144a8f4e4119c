"""rees46: REES46 multi-category store views under the RecSys 2023 protocol.

Source: "eCommerce behavior data from multi category store" by REES46 on Kaggle
(https://www.kaggle.com/datasets/mkechinov/ecommerce-behavior-data-from-multi-category-store),
files ``2019-Oct.csv`` and ``2019-Nov.csv`` (give both; any number of monthly files is read).

Raw format: comma separated with a header line (the data line is one line in the file)::

    event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
    2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,
        72d76fde-8bb3-4e00-8c23-a032dfed738c

Only event_time, event_type, product_id and user_id are read.

Protocol (RecSys 2023, as in ``yoochoose``; the steps shared with it are in
:func:`gru4rec.data.datasets._protocol.recsys2023_splits`):

1. view events only (``event_type == "view"``), filtered while the files are scanned (the
   real files have hundreds of millions of rows: they are streamed, and only the four
   columns are parsed); the first reported step therefore counts view events (and users
   in place of sessions);
2. Time = integer epoch seconds; sessions are derived from user_id: a user's events in time
   order, a new session where the gap to the previous event is strictly over 1 hour;
   sessions are numbered 1, 2, ... by (user_id, session start); user_session is ignored;
3. consecutive repeats removed; 4. sessions of length 1 and items with fewer than 5 events
   dropped until nothing changes;
5. T = 1575158400 (2019-12-01 00:00:00 UTC), d = 1 day (test: sessions starting on
   2019-11-30); 6. train_tr / train_valid at T - 2d.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gru4rec.data.datasets._protocol import DAY, ITEM, TIME, Tracker, user_view_splits
from gru4rec.data.datasets._raw import Field, RawFormat, check_files, read_all
from gru4rec.data.datasets._recipe import Recipe
from gru4rec.data.datasets._time import utc_seconds, utc_seconds_text

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["RECIPE", "run"]

SOURCE = ("Kaggle, 'eCommerce behavior data from multi category store' by REES46: "
          "https://www.kaggle.com/datasets/mkechinov/ecommerce-behavior-data-from-multi-"
          "category-store (2019-Oct.csv, 2019-Nov.csv)")
END = 1_575_158_400  # 2019-12-01 00:00:00 UTC
USER = "user_id"

EVENTS = RawFormat(
    name="REES46 2019-Oct.csv / 2019-Nov.csv", separator=",", header=True,
    columns=("event_time", "event_type", "product_id", "category_id", "category_code",
             "brand", "price", "user_id", "user_session"),
    example="2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,"
            "541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c",
    patterns={"event_time": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "event_type": r"\w+",
              "product_id": r"\d+", "user_id": r"\d+"},
    required=("event_time", "event_type", "product_id", "user_id"),
)
FIELDS = (
    Field("user_id", USER, "Int64", "an integer"),
    Field("product_id", ITEM, "Int64", "an integer"),
    Field("event_time", TIME, "String", "a time like 2019-10-01 00:00:00 UTC",
          fast=utc_seconds, text=utc_seconds_text),
)


def _views(lf: pl.LazyFrame) -> pl.LazyFrame:
    import polars as pl

    return lf.filter(pl.col("event_type") == "view")


def run(paths: Sequence[str | Path], tracker: Tracker, *,
        keep_user: bool = False) -> dict[str, pl.DataFrame]:
    """The rees46 recipe (see the module docstring)."""
    files = check_files(paths, EVENTS, "rees46", (1, None), SOURCE)
    frame = read_all(files, EVENTS, FIELDS, keep=_views)
    return user_view_splits(frame, tracker, USER, "s",
                            end=END, window=DAY["s"], keep_user=keep_user)


RECIPE = Recipe(
    name="rees46", summary="REES46 multi-category store views, RecSys 2023 protocol",
    source=SOURCE, raw_files="2019-Oct.csv 2019-Nov.csv", time_unit="s", run=run,
    options=("keep_user",),
)
