"""retailrocket: Retailrocket e-commerce views under the RecSys 2023 protocol.

Source: "Retailrocket recommender system dataset" on Kaggle
(https://www.kaggle.com/datasets/retailrocket/ecommerce-dataset), file ``events.csv``.

Raw format: comma separated with a header line::

    timestamp,visitorid,event,itemid,transactionid
    1433221332117,257597,view,355908,

timestamp is in epoch milliseconds; transactionid is empty except for transactions and is
not read.

Protocol (RecSys 2023, as in ``yoochoose``):

1. view events only (``event == "view"``);
2. Time = integer epoch milliseconds; sessions are derived from visitorid: a visitor's events
   in time order, a new session where the gap to the previous one is strictly over 1 hour
   (3,600,000 ms); numbered 1, 2, ... by (visitorid, session start);
3. consecutive repeats removed; 4. sessions of length 1 and items with fewer than 5 events
   dropped until nothing changes;
5. T = 1442545200000 (2015-09-18 03:00:00 UTC), d = 7 days; 6. train_tr / train_valid at
   T - 2d. Events at or after T are not removed (the real data ends before T).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gru4rec.data.datasets._protocol import DAY, ITEM, TIME, Tracker, user_view_splits
from gru4rec.data.datasets._raw import Field, RawFormat, check_files, read_all
from gru4rec.data.datasets._recipe import Recipe

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["RECIPE", "run"]

SOURCE = ("Kaggle, 'Retailrocket recommender system dataset': "
          "https://www.kaggle.com/datasets/retailrocket/ecommerce-dataset (events.csv)")
END = 1_442_545_200_000  # 2015-09-18 03:00:00 UTC, in ms
USER = "visitorid"

EVENTS = RawFormat(
    name="Retailrocket events.csv", separator=",", header=True,
    columns=("timestamp", "visitorid", "event", "itemid", "transactionid"),
    example="1433221332117,257597,view,355908,",
    patterns={"timestamp": r"\d+", "visitorid": r"\d+", "event": r"\w+", "itemid": r"\d+"},
    required=("timestamp", "visitorid", "event", "itemid"),
)
FIELDS = (
    Field("visitorid", USER, "Int64", "an integer"),
    Field("itemid", ITEM, "Int64", "an integer"),
    Field("timestamp", TIME, "Int64", "an integer (epoch milliseconds)"),
)


def _views(lf: pl.LazyFrame) -> pl.LazyFrame:
    import polars as pl

    return lf.filter(pl.col("event") == "view")


def run(paths: Sequence[str | Path], tracker: Tracker, *,
        keep_user: bool = False) -> dict[str, pl.DataFrame]:
    """The retailrocket recipe (see the module docstring)."""
    files = check_files(paths, EVENTS, "retailrocket", (1, 1), SOURCE)
    frame = read_all(files, EVENTS, FIELDS, keep=_views)
    return user_view_splits(frame, tracker, USER, "ms",
                            end=END, window=7 * DAY["ms"], keep_user=keep_user)


RECIPE = Recipe(
    name="retailrocket", summary="Retailrocket views, RecSys 2023 protocol (7-day test)",
    source=SOURCE, raw_files="events.csv", time_unit="ms", run=run,
    options=("keep_user",),
)
