"""diginetica recipe (RecSys 2023 protocol): a hand-made train-item-views.csv with known
counts and splits, and a differential test against the plain pandas rendering of the
protocol in conftest.py."""

from __future__ import annotations

import calendar
from io import StringIO

import pandas as pd
import pytest

pl = pytest.importorskip("polars")

from gru4rec.data.datasets import run_recipe  # noqa: E402

D_MS = 86_400_000


# Items A=1 B=2 C=3 D=4 H=8. Session 2 crosses midnight (its rows carry two dates; both
# times count from the earliest one). Session 4 has a repeat, 3 has one event. T = the last
# event (2016-05-29 01:00); session 7's second event is exactly at T - d (cut from train).
DIGINETICA = """\
sessionId;userId;itemId;timeframe;eventdate
1;;1;0;2016-05-01
1;;2;1000;2016-05-01
1;;1;2000;2016-05-01
1;;3;3000;2016-05-01
2;77;3;87000000;2016-05-03
2;77;2;85000000;2016-05-02
3;;4;0;2016-05-04
4;;1;0;2016-05-05
4;;1;500;2016-05-05
4;;2;900;2016-05-05
5;;3;0;2016-05-15
5;;1;7200000;2016-05-15
6;;2;0;2016-05-16
6;;3;60000;2016-05-16
7;;1;0;2016-05-22
7;;2;3600000;2016-05-22
8;;1;0;2016-05-25
8;;2;1000;2016-05-25
8;;8;2000;2016-05-25
9;;8;0;2016-05-29
9;;3;1000;2016-05-29
9;;8;2000;2016-05-29
9;;1;3000;2016-05-29
9;;8;4000;2016-05-29
9;;2;5000;2016-05-29
9;;8;3600000;2016-05-29
"""


def test_diginetica_known_answer(run_raw, steps, sessions, split_steps) -> None:
    report = run_raw("diginetica", train_item_views__csv=DIGINETICA)
    assert steps(report) == [
        ("read", 26, 9, 5), ("consecutive repeats removed", 25, 9, 5),
        ("round 1: sessions >= 2", 24, 8, 4), ("round 1: items >= 5", 24, 8, 4),
        ("round 2: sessions >= 2", 24, 8, 4), ("round 2: items >= 5", 24, 8, 4),
        *zip(split_steps, [10, 12, 5, 2, 8, 2], [2, 5, 2, 1, 3, 1], [4, 3, 3, 2, 3, 2],
             strict=True),
    ]
    end = 1_464_483_600_000
    assert report.cuts == {"end": end, "test_start": end - 7 * D_MS,
                           "valid_start": end - 14 * D_MS}
    may2 = calendar.timegm((2016, 5, 2, 0, 0, 0)) * 1000
    full = report.frames["train_full"]
    assert full.filter(pl.col("SessionId") == 2).rows() == [(2, 2, may2 + 85_000_000),
                                                            (2, 3, may2 + 87_000_000)]
    assert sessions(report, "train_full") == [[1, 2, 1, 3], [2, 3], [1, 2], [3, 1], [2, 3]]
    assert sessions(report, "test") == [[1, 2], [3, 1, 2]]
    assert sessions(report, "train_tr") == [[1, 2, 1, 3], [2, 3], [1, 2]]
    assert sessions(report, "train_valid") == [[2, 3]]


def test_diginetica_matches_reference(tmp_path, random_events, reference_protocol, epoch,
                                      check_splits) -> None:
    ev = random_events(5, 1462060800000, 30, n_users=500)
    ev = ev.sort_values(["user", "ms"], kind="stable")
    first = ev.groupby("user")["ms"].transform("min")
    day = pd.to_datetime(ev["ms"], unit="ms", utc=True).dt.strftime("%Y-%m-%d")
    text = "sessionId;userId;itemId;timeframe;eventdate\n" + "".join(
        f"{u};;{i};{t - f};{d}\n"
        for u, i, t, f, d in zip(ev["user"], ev["item"], ev["ms"], first, day, strict=True))
    path = tmp_path / "train-item-views.csv"
    path.write_text(text)
    raw = pd.read_csv(StringIO(text), sep=";")
    days = epoch(raw["eventdate"], "%Y-%m-%d", "D")
    start = days.groupby(raw["sessionId"]).transform("min") * D_MS
    data = pd.DataFrame({"SessionId": raw["sessionId"], "ItemId": raw["itemId"],
                         "Time": start + raw["timeframe"]})
    expected = reference_protocol(data, None, 7 * D_MS)
    check_splits(run_recipe("diginetica", [path]).frames, expected)
