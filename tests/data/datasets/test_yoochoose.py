"""yoochoose recipe (RecSys 2023 protocol): a hand-made yoochoose-clicks.dat and
yoochoose-test.dat with known counts and splits, and a differential test against the plain
pandas rendering of the protocol in conftest.py."""

from __future__ import annotations

import calendar
from io import StringIO

import pandas as pd
import pytest

pl = pytest.importorskip("polars")

from gru4rec.data.datasets import run_recipe  # noqa: E402

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


def test_yoochoose_known_answer(run_raw, steps, sessions, split_steps) -> None:
    report = run_raw("yoochoose", yoochoose_clicks__dat=YOOCHOOSE_CLICKS,
                     yoochoose_test__dat=YOOCHOOSE_TEST)
    assert steps(report) == [
        ("read", 52, 18, 7), ("consecutive repeats removed", 47, 18, 7),
        ("round 1: sessions >= 2", 45, 16, 7), ("round 1: items >= 5", 44, 16, 6),
        ("round 2: sessions >= 2", 43, 15, 6), ("round 2: items >= 5", 39, 15, 5),
        ("round 3: sessions >= 2", 38, 14, 5), ("round 3: items >= 5", 38, 14, 5),
        ("round 4: sessions >= 2", 38, 14, 5), ("round 4: items >= 5", 38, 14, 5),
        *zip(split_steps, [17, 20, 10, 6, 13, 4], [6, 8, 4, 3, 5, 2], [5, 4, 4, 4, 3, 3],
             strict=True),
    ]
    end = calendar.timegm((2014, 4, 10, 12, 0, 0))
    assert report.cuts == {"end": end, "test_start": end - 86400,
                           "valid_start": end - 2 * 86400}
    assert report.frames["train_full"]["SessionId"].unique().to_list() == \
        [1, 2, 3, 7, 10, 11, 12, 13]
    assert sessions(report, "train_full")[-1] == [11, 13]  # S13 before T - d
    assert sessions(report, "test") == [[13, 11], [15, 12, 15], [15, 11, 15], [12, 13]]
    assert report.frames["test"]["SessionId"].unique().to_list() == [14, 20, 21, 23]
    assert sessions(report, "train_tr") == [[11, 12, 11], [12, 13, 11], [13, 11, 12],
                                             [11, 12], [11, 12]]
    assert sessions(report, "train_valid") == [[12, 13], [11, 13]]
    assert report.frames["test"].rows()[:2] == [(14, 13, end - 86400.0),
                                                (14, 11, end - 86400.0 + 60)]


def test_yoochoose_matches_reference(tmp_path, random_events, reference_protocol, epoch,
                                     check_splits) -> None:
    ev = random_events(1, 1396310400000, 5)
    stamps = pd.to_datetime(ev["ms"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    lines = [f"{u},{s[:-3]}Z,{i},0\n" for u, i, s in zip(ev["user"], ev["item"], stamps,
                                                          strict=True)]
    half = len(lines) // 2
    clicks, test = tmp_path / "clicks.dat", tmp_path / "test.dat"
    clicks.write_text("".join(lines[:half]))
    test.write_text("".join(lines[half:]))
    raw = pd.read_csv(StringIO("".join(lines)), header=None, names=["s", "t", "i", "c"])
    data = pd.DataFrame({"SessionId": raw["s"], "ItemId": raw["i"],
                         "Time": epoch(raw["t"], "%Y-%m-%dT%H:%M:%S.%fZ", "ms") / 1000})
    check_splits(run_recipe("yoochoose", [clicks, test]).frames,
                 reference_protocol(data, None, 86400))
