"""coveo: Coveo SIGIR eCom 2021 data challenge product views under the RecSys 2023 protocol.

Source: the Coveo "SIGIR eCom 2021 Data Challenge" dataset (shopper intent prediction from
clickstream data; https://github.com/coveooss/SIGIR-ecom-data-challenge, download after
accepting the terms), file ``browsing_train.csv`` (in the release folder
``release_10_23_2020``; the file is sometimes saved as ``release_10_23_2020.csv``).

Raw format: comma separated with a header line::

    session_id_hash,event_type,product_action,product_sku_hash,server_timestamp_epoch_ms,hashed_url
    00000477-a8a2-4e49-9b8b-ae4b9d0b6ef6,event_product,detail,d8ea0d5c8b5fe4d9e34e58d8ccad8b3e,1550885213307,5f1f5cbc5f1b9a36c6e1a3bc8e3d4d6b

The product column may also be spelled ``product_skus_hash``. Only session_id_hash,
product_action, the product column and server_timestamp_epoch_ms are read.

Protocol (RecSys 2023, as in ``yoochoose``):

1. view events = ``product_action == "detail"``; detail events without a product hash are
   dropped with the others (they cannot be items);
2. Time = integer epoch milliseconds; sessions are derived from session_id_hash with the
   1-hour gap rule (a gap strictly over 3,600,000 ms starts a new session), numbered
   1, 2, ... by (session_id_hash in string order, session start); item ids are the SKU
   hashes (strings);
3. consecutive repeats removed; 4. sessions of length 1 and items with fewer than 5 events
   dropped until nothing changes;
5. T = the latest time left after step 4, d = 1 day; 6. train_tr / train_valid at T - 2d.
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

SOURCE = ("the Coveo SIGIR eCom 2021 data challenge, "
          "https://github.com/coveooss/SIGIR-ecom-data-challenge (browsing_train.csv)")
USER = "session_id_hash"

BROWSING = RawFormat(
    name="Coveo browsing_train.csv", separator=",", header=True,
    columns=("session_id_hash", "event_type", "product_action", "product_sku_hash",
             "server_timestamp_epoch_ms", "hashed_url"),
    example="00000477-a8a2-4e49-9b8b-ae4b9d0b6ef6,event_product,detail,"
            "d8ea0d5c8b5fe4d9e34e58d8ccad8b3e,1550885213307,5f1f5cbc5f1b9a36c6e1a3bc8e3d4d6b",
    patterns={"session_id_hash": r"[^\s,]+", "product_action": r"[a-z_]*",
              "server_timestamp_epoch_ms": r"\d+"},
    required=("session_id_hash", "product_action", "product_sku_hash",
              "server_timestamp_epoch_ms"),
    aliases={"product_sku_hash": ("product_skus_hash",)},
)
FIELDS = (
    Field("session_id_hash", USER, "String", "a session hash"),
    Field("product_sku_hash", ITEM, "String", "a product hash"),
    Field("server_timestamp_epoch_ms", TIME, "Int64", "an integer (epoch milliseconds)"),
)


def _details(lf: pl.LazyFrame) -> pl.LazyFrame:
    import polars as pl

    return lf.filter((pl.col("product_action") == "detail")
                     & pl.col("product_sku_hash").is_not_null())


def run(paths: Sequence[str | Path], tracker: Tracker, *,
        keep_user: bool = False) -> dict[str, pl.DataFrame]:
    """The coveo recipe (see the module docstring)."""
    files = check_files(paths, BROWSING, "coveo", (1, 1), SOURCE)
    frame = read_all(files, BROWSING, FIELDS, keep=_details)
    return user_view_splits(frame, tracker, USER, "ms",
                            end=None, window=DAY["ms"], keep_user=keep_user)


RECIPE = Recipe(
    name="coveo", summary="Coveo SIGIR eCom 2021 product detail views, RecSys 2023 protocol",
    source=SOURCE, raw_files="browsing_train.csv", time_unit="ms", run=run,
    options=("keep_user",),
)
