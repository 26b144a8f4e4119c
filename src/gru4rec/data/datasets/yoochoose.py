"""yoochoose: the full YOOCHOOSE click log under the RecSys 2023 protocol.

The protocol of Hidasi & Czapp, "The effect of third party implementations on
reproducibility" (RecSys 2023), shared with ``rees46``, ``coveo``, ``retailrocket`` and
``diginetica`` (see :func:`gru4rec.data.datasets._protocol.recsys2023_splits`).

Source: the RecSys Challenge 2015 data by YOOCHOOSE (``yoochoose-data.7z`` from
https://recsys.acm.org/recsys15/challenge/, also on Kaggle as "RecSys Challenge 2015");
this recipe reads ``yoochoose-clicks.dat`` and ``yoochoose-test.dat`` together.

Raw format: both files as in ``rsc15``: comma separated, no header,
``session_id,timestamp,item_id,category`` (``1,2014-04-07T10:51:09.277Z,214536502,0``).

Protocol:

1. every click is a view event; the sessions are the given session ids (the two files'
   ids are disjoint in the real data; an id found in both would be one session);
2. Time = epoch seconds as a float with the millisecond fraction, as in ``rsc15``;
3. sort by (session, time, item) and drop an event repeating the previous event's item in
   its session;
4. repeat until nothing changes: drop sessions of length 1, then items with fewer than 5
   events;
5. T = the latest time left after step 4, d = 1 day: test = the sessions starting at or
   after T - d; train_full = the events before T - d of the other sessions, then sessions of
   length 1 dropped; test events of items absent from train_full are dropped, then test
   sessions shorter than 2;
6. the same inside train_full at T - 2d gives train_tr and train_valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gru4rec.data.datasets._protocol import DAY, Tracker, recsys2023_splits
from gru4rec.data.datasets._raw import check_files
from gru4rec.data.datasets._recipe import Recipe
from gru4rec.data.datasets.rsc15 import CLICKS, SOURCE, read_clicks

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["RECIPE", "run"]


def run(paths: Sequence[str | Path], tracker: Tracker) -> dict[str, pl.DataFrame]:
    """The yoochoose recipe (see the module docstring)."""
    files = check_files(paths, CLICKS, "yoochoose (yoochoose-clicks.dat and yoochoose-test.dat)",
                        (2, 2), SOURCE)
    frame = tracker.record("read", read_clicks(files))
    return recsys2023_splits(frame, tracker, end=None, window=DAY["s"])


RECIPE = Recipe(
    name="yoochoose",
    summary="RecSys Challenge 2015 clicks + test clicks, RecSys 2023 protocol (1-day test)",
    source=SOURCE, raw_files="yoochoose-clicks.dat yoochoose-test.dat", time_unit="s",
    run=run,
)
