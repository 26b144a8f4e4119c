"""The five RecSys 2023 protocol recipes (yoochoose, rees46, coveo, retailrocket, diginetica):
a hand-made raw file per recipe with known counts and splits, and a differential test of
each against a plain pandas rendering of the protocol written below."""

from __future__ import annotations

import calendar
from io import StringIO

import numpy as np
import pandas as pd
import pytest

pl = pytest.importorskip("polars")

from gru4rec.data.datasets import SPLITS, run_recipe  # noqa: E402

H_MS, D_MS = 3_600_000, 86_400_000


def _run(tmp_path, dataset: str, **files: str):
    paths = []
    for name, text in files.items():
        path = tmp_path / name.replace("__", ".").replace("_", "-")
        path.write_text(text)
        paths.append(path)
    return run_recipe(dataset, paths)


def _steps(report) -> list[tuple]:
    return [(s.name, s.events, s.sessions, s.items) for s in report.steps]


def _sessions(report, split: str) -> list[list]:
    """The items of each session of ``split``, sessions in id order."""
    frame = report.frames[split]
    return [g["ItemId"].to_list() for _, g in frame.group_by("SessionId", maintain_order=True)]


SPLIT_STEPS = ["test (sessions starting >= cut)", "train_full", "test",
               "train_valid (sessions starting >= cut)", "train_tr", "train_valid"]

# ------------------------------------------------------------------ yoochoose
# Items A=11 B=12 C=13 E=15 P=16 R=17 U=19. Repeats in S1, S9, S20, S22. The filtering needs
# four rounds: R goes (round 1), so S4 = [P] goes and P falls to 4 events (round 2), so
# S6 = [C] goes (round 3), then nothing (round 4). T = 2014-04-10T12:00Z (the last event).
# S13 straddles T - d (its 13:00 event is cut), S14 starts exactly at T - d (test); S10
# straddles T - 2d, S11 starts exactly at T - 2d (valid). U and E are unseen in test / valid.
YOOCHOOSE_CLICKS = """\
1,2014-04-01T10:00:00.000Z,11,0
1,2014-04-01T10:01:00.000Z,11,0
1,2014-04-01T10:02:00.000Z,12,0
1,2014-04-01T10:03:00.000Z,12,0
1,2014-04-01T10:04:00.000Z,11,0
2,2014-04-02T10:00:00.000Z,12,0
2,2014-04-02T10:01:00.000Z,13,0
2,2014-04-02T10:02:00.000Z,11,0
3,2014-04-03T10:00:00.000Z,13,0
3,2014-04-03T10:01:00.000Z,11,0
3,2014-04-03T10:02:00.000Z,12,S
4,2014-04-04T10:00:00.000Z,16,0
4,2014-04-04T10:01:00.000Z,17,0
6,2014-04-04T11:00:00.000Z,16,0
6,2014-04-04T11:01:00.000Z,13,0
7,2014-04-05T10:00:00.000Z,16,0
7,2014-04-05T10:01:00.000Z,11,0
7,2014-04-05T10:02:00.000Z,16,0
7,2014-04-05T10:03:00.000Z,12,0
7,2014-04-05T10:04:00.000Z,16,0
8,2014-04-05T11:00:00.000Z,11,0
9,2014-04-05T12:00:00.000Z,12,0
9,2014-04-05T12:01:00.000Z,12,0
10,2014-04-08T11:00:00.000Z,11,0
10,2014-04-08T11:30:00.000Z,12,0
10,2014-04-08T13:00:00.000Z,13,0
11,2014-04-08T12:00:00.000Z,12,0
11,2014-04-08T12:01:00.000Z,13,0
12,2014-04-09T10:00:00.000Z,15,0
12,2014-04-09T10:01:00.000Z,11,0
13,2014-04-09T11:00:00.000Z,11,0
13,2014-04-09T11:30:00.000Z,13,0
13,2014-04-09T13:00:00.000Z,12,0
14,2014-04-09T12:00:00.000Z,13,0
14,2014-04-09T12:01:00.000Z,11,0
"""
YOOCHOOSE_TEST = """\
20,2014-04-10T09:00:00.000Z,15,0
20,2014-04-10T09:01:00.000Z,15,0
20,2014-04-10T09:02:00.000Z,12,0
20,2014-04-10T09:03:00.000Z,15,0
21,2014-04-10T10:00:00.000Z,15,0
21,2014-04-10T10:01:00.000Z,11,0
21,2014-04-10T10:02:00.000Z,15,0
22,2014-04-10T11:00:00.000Z,19,0
22,2014-04-10T11:01:00.000Z,19,0
22,2014-04-10T11:02:00.000Z,11,0
23,2014-04-10T11:10:00.000Z,19,0
23,2014-04-10T11:11:00.000Z,12,0
23,2014-04-10T11:12:00.000Z,19,0
23,2014-04-10T11:13:00.000Z,13,0
23,2014-04-10T11:14:00.000Z,19,0
24,2014-04-10T11:59:00.000Z,11,0
24,2014-04-10T12:00:00.000Z,19,0
"""


def test_yoochoose_known_answer(tmp_path) -> None:
    report = _run(tmp_path, "yoochoose", yoochoose_clicks__dat=YOOCHOOSE_CLICKS,
                  yoochoose_test__dat=YOOCHOOSE_TEST)
    assert _steps(report) == [
        ("read", 52, 18, 7), ("consecutive repeats removed", 47, 18, 7),
        ("round 1: sessions >= 2", 45, 16, 7), ("round 1: items >= 5", 44, 16, 6),
        ("round 2: sessions >= 2", 43, 15, 6), ("round 2: items >= 5", 39, 15, 5),
        ("round 3: sessions >= 2", 38, 14, 5), ("round 3: items >= 5", 38, 14, 5),
        ("round 4: sessions >= 2", 38, 14, 5), ("round 4: items >= 5", 38, 14, 5),
        *zip(SPLIT_STEPS, [17, 20, 10, 6, 13, 4], [6, 8, 4, 3, 5, 2], [5, 4, 4, 4, 3, 3],
             strict=True),
    ]
    end = calendar.timegm((2014, 4, 10, 12, 0, 0))
    assert report.cuts == {"end": end, "test_start": end - 86400,
                           "valid_start": end - 2 * 86400}
    assert report.frames["train_full"]["SessionId"].unique().to_list() == \
        [1, 2, 3, 7, 10, 11, 12, 13]
    assert _sessions(report, "train_full")[-1] == [11, 13]  # S13 before T - d
    assert _sessions(report, "test") == [[13, 11], [15, 12, 15], [15, 11, 15], [12, 13]]
    assert report.frames["test"]["SessionId"].unique().to_list() == [14, 20, 21, 23]
    assert _sessions(report, "train_tr") == [[11, 12, 11], [12, 13, 11], [13, 11, 12],
                                             [11, 12], [11, 12]]
    assert _sessions(report, "train_valid") == [[12, 13], [11, 13]]
    assert report.frames["test"].rows()[:2] == [(14, 13, end - 86400.0),
                                                (14, 11, end - 86400.0 + 60)]


# ------------------------------------------------------------------ rees46
# Users 501-509, items A=1 B=2 C=3 D=4 F=6. User 501's first session spans the two files;
# its 01:10:00 view is exactly 1 h after the previous one (same session), 02:10:01 is 1 h 1 s
# later (new session). Cart and purchase rows are dropped; user 502's second A view repeats
# the first once the cart row is gone. T = 2019-12-01 (fixed): 507 straddles T - d, 505
# straddles T - 2d; F appears only in test.
REES46_OCT = """\
event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-15 12:00:00 UTC,purchase,1,2053013555631882655,electronics.smartphone,xiaomi,489.07,510,aa
2019-10-31 23:30:00 UTC,view,1,2053013555631882655,electronics.smartphone,xiaomi,489.07,501,s1
"""
REES46_NOV = """\
event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-11-01 00:10:00 UTC,view,2,2053013563810775923,,,17.02,501,s1
2019-11-01 01:10:00 UTC,view,3,2053013563810775923,,,17.02,501,s1
2019-11-01 02:10:01 UTC,view,1,2053013563810775923,,,17.02,501,s2
2019-11-01 02:20:00 UTC,view,2,2053013563810775923,,,17.02,501,s2
2019-11-02 10:00:00 UTC,view,1,2053013563810775923,,,17.02,502,s3
2019-11-02 10:05:00 UTC,cart,1,2053013563810775923,,,17.02,502,s3
2019-11-02 10:06:00 UTC,view,1,2053013563810775923,,,17.02,502,s3
2019-11-02 10:07:00 UTC,view,3,2053013563810775923,,,17.02,502,s3
2019-11-02 10:08:00 UTC,purchase,3,2053013563810775923,,,17.02,502,s3
2019-11-03 10:00:00 UTC,view,2,2053013563810775923,,,17.02,503,s4
2019-11-03 10:01:00 UTC,view,3,2053013563810775923,,,17.02,503,s4
2019-11-03 10:02:00 UTC,view,2,2053013563810775923,,,17.02,503,s4
2019-11-05 10:00:00 UTC,view,4,2053013563810775923,,,17.02,504,s5
2019-11-28 23:30:00 UTC,view,1,2053013563810775923,,,17.02,505,s6
2019-11-29 00:20:00 UTC,view,2,2053013563810775923,,,17.02,505,s6
2019-11-29 10:00:00 UTC,view,2,2053013563810775923,,,17.02,506,s7
2019-11-29 10:30:00 UTC,view,3,2053013563810775923,,,17.02,506,s7
2019-11-29 23:30:00 UTC,view,3,2053013563810775923,,,17.02,507,s8
2019-11-30 00:20:00 UTC,view,1,2053013563810775923,,,17.02,507,s8
2019-11-30 08:00:00 UTC,view,1,2053013563810775923,,,17.02,508,s9
2019-11-30 08:10:00 UTC,view,2,2053013563810775923,,,17.02,508,s9
2019-11-30 08:20:00 UTC,view,6,2053013563810775923,,,17.02,508,s9
2019-11-30 09:00:00 UTC,view,6,2053013563810775923,,,17.02,509,s10
2019-11-30 09:01:00 UTC,view,2,2053013563810775923,,,17.02,509,s10
2019-11-30 09:02:00 UTC,view,6,2053013563810775923,,,17.02,509,s10
2019-11-30 09:03:00 UTC,view,3,2053013563810775923,,,17.02,509,s10
2019-11-30 09:04:00 UTC,view,6,2053013563810775923,,,17.02,509,s10
2019-11-30 09:05:00 UTC,view,1,2053013563810775923,,,17.02,509,s10
2019-11-30 09:06:00 UTC,view,6,2053013563810775923,,,17.02,509,s10
"""


def test_rees46_known_answer(tmp_path) -> None:
    report = _run(tmp_path, "rees46", a_2019_Oct__csv=REES46_OCT, b_2019_Nov__csv=REES46_NOV)
    assert _steps(report) == [
        ("view events", 28, 9, 5), ("sessions (1 hour gap)", 28, 10, 5),
        ("consecutive repeats removed", 27, 10, 5),
        ("round 1: sessions >= 2", 26, 9, 4), ("round 1: items >= 5", 26, 9, 4),
        ("round 2: sessions >= 2", 26, 9, 4), ("round 2: items >= 5", 26, 9, 4),
        *zip(SPLIT_STEPS, [10, 14, 5, 2, 10, 2], [2, 6, 2, 1, 4, 1], [4, 3, 3, 2, 3, 2],
             strict=True),
    ]
    assert report.cuts == {"end": 1575158400, "test_start": 1575072000,
                           "valid_start": 1575072000 - 86400}
    assert _sessions(report, "train_full") == [[1, 2, 3], [1, 2], [1, 3], [2, 3, 2], [1, 2],
                                               [2, 3]]
    assert report.frames["train_full"]["SessionId"].unique().to_list() == [1, 2, 3, 4, 6, 7]
    assert report.frames["train_full"].rows()[:2] == [(1, 1, 1572564600), (1, 2, 1572567000)]
    assert _sessions(report, "test") == [[1, 2], [2, 3, 1]]
    assert report.frames["test"]["SessionId"].unique().to_list() == [9, 10]
    assert _sessions(report, "train_tr") == [[1, 2, 3], [1, 2], [1, 3], [2, 3, 2]]
    assert _sessions(report, "train_valid") == [[2, 3]]
    assert report.frames["test"].schema["Time"] == pl.Int64


# ------------------------------------------------------------------ coveo
# Session hashes sa..sg, SKU hashes x (9 events), y (7), z (1), w (5, only in test). sa's
# second view is exactly 1 h after the first (same session), its third 1 h + 1 ms after the
# second (new session). Pageviews, add events and a detail without SKU are dropped; sb's two
# y views collapse. The header spells the product column product_skus_hash.
_C0 = 1_550_000_000_000


def _coveo_text() -> str:
    rows = [
        ("sa", "event_product", "detail", "x", _C0), ("sa", "event_product", "detail", "y",
                                                       _C0 + H_MS),
        ("sa", "event_product", "detail", "x", _C0 + 2 * H_MS + 1),
        ("sa", "event_product", "detail", "y", _C0 + 2 * H_MS + 100_001),
        ("sb", "pageview", "", "", _C0 + 10_000), ("sb", "event_product", "detail", "x",
                                                    _C0 + 20_000),
        ("sb", "event_product", "add", "y", _C0 + 30_000),
        ("sb", "event_product", "detail", "", _C0 + 35_000),
        ("sb", "event_product", "detail", "y", _C0 + 40_000),
        ("sb", "event_product", "detail", "y", _C0 + 50_000),
        ("sc", "event_product", "detail", "z", _C0 + 60_000),
        *[("sd", "event_product", "detail", s, _C0 + D_MS + k * 1000)
          for k, s in enumerate("xyx", 1)],
        *[("se", "event_product", "detail", s, _C0 + 2 * D_MS + k * 1000)
          for k, s in enumerate("xyw", 1)],
        *[("sf", "event_product", "detail", s, _C0 + 2 * D_MS + 10_000 + k * 1000)
          for k, s in enumerate("wxwywxw")],
        ("sg", "event_product", "detail", "x", _C0 + 3 * D_MS - 60_000),
        ("sg", "event_product", "detail", "y", _C0 + 3 * D_MS),
    ]
    lines = ["session_id_hash,event_type,product_action,product_skus_hash,"
             "server_timestamp_epoch_ms,hashed_url"]
    lines += [f"{s},{e},{a},{i},{t},u{n}" for n, (s, e, a, i, t) in enumerate(rows)]
    return "\n".join(lines) + "\n"


def test_coveo_known_answer(tmp_path) -> None:
    report = _run(tmp_path, "coveo", browsing_train__csv=_coveo_text())
    assert _steps(report) == [
        ("view events", 23, 7, 4), ("sessions (1 hour gap)", 23, 8, 4),
        ("consecutive repeats removed", 22, 8, 4),
        ("round 1: sessions >= 2", 21, 7, 3), ("round 1: items >= 5", 21, 7, 3),
        ("round 2: sessions >= 2", 21, 7, 3), ("round 2: items >= 5", 21, 7, 3),
        *zip(SPLIT_STEPS, [12, 9, 7, 3, 6, 3], [3, 4, 3, 1, 3, 1], [3, 2, 2, 2, 2, 2],
             strict=True),
    ]
    assert report.cuts["end"] == _C0 + 3 * D_MS
    assert _sessions(report, "train_full") == [["x", "y"], ["x", "y"], ["x", "y"],
                                               ["x", "y", "x"]]
    assert report.frames["train_full"]["SessionId"].unique().to_list() == [1, 2, 3, 5]
    assert _sessions(report, "test") == [["x", "y"], ["x", "y", "x"], ["x", "y"]]
    assert _sessions(report, "train_tr") == [["x", "y"], ["x", "y"], ["x", "y"]]
    assert _sessions(report, "train_valid") == [["x", "y", "x"]]
    assert report.frames["train_full"].rows()[1] == (1, "y", _C0 + H_MS)


# ------------------------------------------------------------------ retailrocket
# T = 1442545200000 (fixed), d = 7 days. Visitor 1's B view is exactly 1 h after A (same
# session), the next A 1 h + 1 ms later (new session). Visitor 3 straddles T - 2d, visitor 5
# straddles T - d; G appears only in test; Q once. C has exactly 5 views.
_T = 1_442_545_200_000


def _retailrocket_text() -> str:
    t1 = _T - 20 * D_MS
    rows = [
        (t1, 1, "view", "1", ""), (t1 + 300_000, 1, "addtocart", "1", ""),
        (t1 + H_MS, 1, "view", "2", ""), (t1 + 2 * H_MS + 1, 1, "view", "1", ""),
        (t1 + 2 * H_MS + 1001, 1, "view", "3", ""),
        *[(_T - 15 * D_MS + k * 1000, 2, "view", s, "") for k, s in enumerate("2322")],
        (_T - 15 * D_MS + 9000, 2, "transaction", "2", "4000"),
        (_T - 14 * D_MS - 1_800_000, 3, "view", "1", ""),
        (_T - 14 * D_MS + 1_800_000, 3, "view", "3", ""),
        (_T - 10 * D_MS, 4, "view", "3", ""), (_T - 10 * D_MS + 1000, 4, "view", "1", ""),
        (_T - 7 * D_MS - 600_000, 5, "view", "2", ""),
        (_T - 7 * D_MS + 600_000, 5, "view", "1", ""),
        *[(_T - 3 * D_MS + k * 1000, 6, "view", s, "") for k, s in enumerate("127")],
        *[(_T - 2 * D_MS + k * 1000, 7, "view", s, "") for k, s in enumerate("7371727")],
        (_T - D_MS, 8, "view", "9", ""),
    ]
    lines = ["timestamp,visitorid,event,itemid,transactionid"]
    lines += [",".join(str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def test_retailrocket_known_answer(tmp_path) -> None:
    report = _run(tmp_path, "retailrocket", events__csv=_retailrocket_text())
    assert _steps(report) == [
        ("view events", 25, 8, 5), ("sessions (1 hour gap)", 25, 9, 5),
        ("consecutive repeats removed", 24, 9, 5),
        ("round 1: sessions >= 2", 23, 8, 4), ("round 1: items >= 5", 23, 8, 4),
        ("round 2: sessions >= 2", 23, 8, 4), ("round 2: items >= 5", 23, 8, 4),
        *zip(SPLIT_STEPS, [10, 11, 5, 2, 7, 2], [2, 5, 2, 1, 3, 1], [4, 3, 3, 2, 3, 2],
             strict=True),
    ]
    assert report.cuts == {"end": _T, "test_start": _T - 7 * D_MS,
                           "valid_start": _T - 14 * D_MS}
    assert _sessions(report, "train_full") == [[1, 2], [1, 3], [2, 3, 2], [1, 3], [3, 1]]
    assert report.frames["train_full"]["SessionId"].unique().to_list() == [1, 2, 3, 4, 5]
    assert _sessions(report, "test") == [[1, 2], [3, 1, 2]]
    assert _sessions(report, "train_tr") == [[1, 2], [1, 3], [2, 3, 2]]
    assert _sessions(report, "train_valid") == [[3, 1]]


# ------------------------------------------------------------------ diginetica
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


def test_diginetica_known_answer(tmp_path) -> None:
    report = _run(tmp_path, "diginetica", train_item_views__csv=DIGINETICA)
    assert _steps(report) == [
        ("read", 26, 9, 5), ("consecutive repeats removed", 25, 9, 5),
        ("round 1: sessions >= 2", 24, 8, 4), ("round 1: items >= 5", 24, 8, 4),
        ("round 2: sessions >= 2", 24, 8, 4), ("round 2: items >= 5", 24, 8, 4),
        *zip(SPLIT_STEPS, [10, 12, 5, 2, 8, 2], [2, 5, 2, 1, 3, 1], [4, 3, 3, 2, 3, 2],
             strict=True),
    ]
    end = 1_464_483_600_000
    assert report.cuts == {"end": end, "test_start": end - 7 * D_MS,
                           "valid_start": end - 14 * D_MS}
    may2 = calendar.timegm((2016, 5, 2, 0, 0, 0)) * 1000
    full = report.frames["train_full"]
    assert full.filter(pl.col("SessionId") == 2).rows() == [(2, 2, may2 + 85_000_000),
                                                            (2, 3, may2 + 87_000_000)]
    assert _sessions(report, "train_full") == [[1, 2, 1, 3], [2, 3], [1, 2], [3, 1], [2, 3]]
    assert _sessions(report, "test") == [[1, 2], [3, 1, 2]]
    assert _sessions(report, "train_tr") == [[1, 2, 1, 3], [2, 3], [1, 2]]
    assert _sessions(report, "train_valid") == [[2, 3]]


# ================================================================== differential tests


def _ref_dedup(df: pd.DataFrame) -> pd.DataFrame:
    keep = []
    for _, group in df.groupby("SessionId", sort=False):
        previous = None
        for index, item in zip(group.index, group["ItemId"], strict=True):
            if item != previous:
                keep.append(index)
            previous = item
    return df.loc[sorted(keep)]


def _ref_min_length(df: pd.DataFrame, n: int) -> pd.DataFrame:
    sizes = df.groupby("SessionId").size()
    return df[df["SessionId"].isin(sizes[sizes >= n].index)]


def _ref_split(df: pd.DataFrame, cut: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    starts = df.groupby("SessionId")["Time"].min()
    late = set(starts[starts >= cut].index)
    test = df[df["SessionId"].isin(late)]
    train = _ref_min_length(df[~df["SessionId"].isin(late) & (df["Time"] < cut)], 2)
    test = _ref_min_length(test[test["ItemId"].isin(set(train["ItemId"]))], 2)
    return train, test


def reference_protocol(df: pd.DataFrame, end: float | None, window: float) -> dict:
    """RecSys 2023 steps 3-6, spelled out plainly."""
    df = df.sort_values(["SessionId", "Time", "ItemId"], kind="stable").reset_index(drop=True)
    df = _ref_dedup(df)
    while True:
        before = len(df)
        df = _ref_min_length(df, 2)
        support = df.groupby("ItemId").size()
        df = df[df["ItemId"].isin(support[support >= 5].index)]
        if len(df) == before:
            break
    end = df["Time"].max() if end is None else end
    full, test = _ref_split(df, end - window)
    tr, valid = _ref_split(full, end - 2 * window)
    out = {"train_full": full, "test": test, "train_tr": tr, "train_valid": valid}
    return {k: v[["SessionId", "ItemId", "Time"]].reset_index(drop=True) for k, v in out.items()}


def reference_sessions(df: pd.DataFrame, user: str, gap: int) -> pd.DataFrame:
    """Sessions from a user column: a gap > ``gap`` starts one; numbered by (user, start)."""
    df = df.sort_values([user, "Time"], kind="stable")
    ids, number, last_user, last_time = [], 0, None, None
    for u, t in zip(df[user], df["Time"], strict=True):
        if u != last_user or t - last_time > gap:
            number += 1
        ids.append(number)
        last_user, last_time = u, t
    return pd.DataFrame({"SessionId": ids, "ItemId": df["ItemId"].to_numpy(),
                         "Time": df["Time"].to_numpy()})


def _epoch(values: pd.Series, fmt: str, unit: str) -> pd.Series:
    stamps = pd.to_datetime(values, format=fmt, utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, unit=unit)


def _random_events(seed: int, start_ms: int, span_days: float, n_users: int = 350,
                   ) -> pd.DataFrame:
    """Users with several visits; gaps of minutes, exactly 1 h, 1 h + 1 unit or days."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 61) ** 1.2
    rows = []
    for user in range(1, n_users + 1):
        t = start_ms + int(rng.integers(0, int(span_days * D_MS)))
        for _ in range(int(rng.integers(1, 10))):
            item = int(rng.choice(60, p=weights / weights.sum())) + 1
            if rows and rows[-1][0] == user and rng.random() < 0.3:
                item = rows[-1][1]  # a repeat
            rows.append((user, item, t, "view" if rng.random() < 0.85 else "cart"))
            t += int(rng.choice([0, 1000, 60_000, 600_000, H_MS, H_MS + 1000, 3 * H_MS,
                                 D_MS]))
    frame = pd.DataFrame(rows, columns=["user", "item", "ms", "kind"])
    return frame[frame["ms"] < start_ms + int(span_days * D_MS)]


def _check(got: dict, expected: dict) -> None:
    for name in SPLITS:
        assert len(expected[name]) > 10, name  # the data exercises every split
        frame = got[name].to_pandas()
        pd.testing.assert_frame_equal(frame, expected[name], check_exact=True,
                                      check_dtype=False)


def test_yoochoose_matches_reference(tmp_path) -> None:
    ev = _random_events(1, 1396310400000, 5)
    stamps = pd.to_datetime(ev["ms"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    lines = [f"{u},{s[:-3]}Z,{i},0\n" for u, i, s in zip(ev["user"], ev["item"], stamps,
                                                          strict=True)]
    half = len(lines) // 2
    clicks, test = tmp_path / "clicks.dat", tmp_path / "test.dat"
    clicks.write_text("".join(lines[:half]))
    test.write_text("".join(lines[half:]))
    raw = pd.read_csv(StringIO("".join(lines)), header=None, names=["s", "t", "i", "c"])
    data = pd.DataFrame({"SessionId": raw["s"], "ItemId": raw["i"],
                         "Time": _epoch(raw["t"], "%Y-%m-%dT%H:%M:%S.%fZ", "ms") / 1000})
    _check(run_recipe("yoochoose", [clicks, test]).frames,
           reference_protocol(data, None, 86400))


def test_rees46_matches_reference(tmp_path) -> None:
    ev = _random_events(2, 1574553600000, 7)  # 2019-11-24 .. 2019-12-01
    stamps = pd.to_datetime(ev["ms"] // 1000 * 1000, unit="ms", utc=True)
    text = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id," \
           "user_session\n" + "".join(
        f"{s:%Y-%m-%d %H:%M:%S} UTC,{k},{i},20530,,,1.5,{u},x\n"
        for s, k, i, u in zip(stamps, ev["kind"], ev["item"], ev["user"], strict=True))
    path = tmp_path / "2019-Nov.csv"
    path.write_text(text)
    raw = pd.read_csv(StringIO(text))
    raw = raw[raw["event_type"] == "view"]
    data = pd.DataFrame({"user": raw["user_id"], "ItemId": raw["product_id"],
                         "Time": _epoch(raw["event_time"], "%Y-%m-%d %H:%M:%S UTC", "s")})
    expected = reference_protocol(reference_sessions(data, "user", 3600), 1575158400, 86400)
    _check(run_recipe("rees46", [path]).frames, expected)


def test_coveo_matches_reference(tmp_path) -> None:
    ev = _random_events(3, _C0, 4)
    action = np.where(ev["kind"] == "view", "detail", "add")
    text = ("session_id_hash,event_type,product_action,product_sku_hash,"
            "server_timestamp_epoch_ms,hashed_url\n" + "".join(
                f"h{u:04x},event_product,{a},sku{i:02x},{t},url\n"
                for u, a, i, t in zip(ev["user"], action, ev["item"], ev["ms"], strict=True)))
    path = tmp_path / "browsing_train.csv"
    path.write_text(text)
    raw = pd.read_csv(StringIO(text))
    raw = raw[raw["product_action"] == "detail"]
    data = pd.DataFrame({"user": raw["session_id_hash"], "ItemId": raw["product_sku_hash"],
                         "Time": raw["server_timestamp_epoch_ms"]})
    expected = reference_protocol(reference_sessions(data, "user", H_MS), None, D_MS)
    _check(run_recipe("coveo", [path]).frames, expected)


def test_retailrocket_matches_reference(tmp_path) -> None:
    ev = _random_events(4, _T - 25 * D_MS, 25, n_users=500)
    text = "timestamp,visitorid,event,itemid,transactionid\n" + "".join(
        f"{t},{u},{k if k == 'view' else 'addtocart'},{i},\n"
        for t, u, k, i in zip(ev["ms"], ev["user"], ev["kind"], ev["item"], strict=True))
    path = tmp_path / "events.csv"
    path.write_text(text)
    raw = pd.read_csv(StringIO(text))
    raw = raw[raw["event"] == "view"]
    data = pd.DataFrame({"user": raw["visitorid"], "ItemId": raw["itemid"],
                         "Time": raw["timestamp"]})
    expected = reference_protocol(reference_sessions(data, "user", H_MS), _T, 7 * D_MS)
    _check(run_recipe("retailrocket", [path]).frames, expected)


def test_diginetica_matches_reference(tmp_path) -> None:
    ev = _random_events(5, 1462060800000, 30, n_users=500)
    ev = ev.sort_values(["user", "ms"], kind="stable")
    first = ev.groupby("user")["ms"].transform("min")
    day = pd.to_datetime(ev["ms"], unit="ms", utc=True).dt.strftime("%Y-%m-%d")
    text = "sessionId;userId;itemId;timeframe;eventdate\n" + "".join(
        f"{u};;{i};{t - f};{d}\n"
        for u, i, t, f, d in zip(ev["user"], ev["item"], ev["ms"], first, day, strict=True))
    path = tmp_path / "train-item-views.csv"
    path.write_text(text)
    raw = pd.read_csv(StringIO(text), sep=";")
    days = _epoch(raw["eventdate"], "%Y-%m-%d", "D")
    start = days.groupby(raw["sessionId"]).transform("min") * D_MS
    data = pd.DataFrame({"SessionId": raw["sessionId"], "ItemId": raw["itemId"],
                         "Time": start + raw["timeframe"]})
    expected = reference_protocol(data, None, 7 * D_MS)
    _check(run_recipe("diginetica", [path]).frames, expected)
