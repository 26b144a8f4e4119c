"""rees46 recipe (RecSys 2023 protocol): hand-made 2019-Oct.csv and 2019-Nov.csv with
known counts and splits, and a differential test against the plain pandas rendering of the
protocol in conftest.py."""

from __future__ import annotations

from io import StringIO

import pandas as pd
import pytest

pl = pytest.importorskip("polars")

from gru4rec.data.datasets import run_recipe  # noqa: E402

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


def test_rees46_known_answer(run_raw, steps, sessions, split_steps) -> None:
    report = run_raw("rees46", a_2019_Oct__csv=REES46_OCT, b_2019_Nov__csv=REES46_NOV)
    assert steps(report) == [
        ("view events", 28, 9, 5), ("sessions (1 hour gap)", 28, 10, 5),
        ("consecutive repeats removed", 27, 10, 5),
        ("round 1: sessions >= 2", 26, 9, 4), ("round 1: items >= 5", 26, 9, 4),
        ("round 2: sessions >= 2", 26, 9, 4), ("round 2: items >= 5", 26, 9, 4),
        *zip(split_steps, [10, 14, 5, 2, 10, 2], [2, 6, 2, 1, 4, 1], [4, 3, 3, 2, 3, 2],
             strict=True),
    ]
    assert report.cuts == {"end": 1575158400, "test_start": 1575072000,
                           "valid_start": 1575072000 - 86400}
    assert sessions(report, "train_full") == [[1, 2, 3], [1, 2], [1, 3], [2, 3, 2], [1, 2],
                                               [2, 3]]
    assert report.frames["train_full"]["SessionId"].unique().to_list() == [1, 2, 3, 4, 6, 7]
    assert report.frames["train_full"].rows()[:2] == [(1, 1, 1572564600), (1, 2, 1572567000)]
    assert sessions(report, "test") == [[1, 2], [2, 3, 1]]
    assert report.frames["test"]["SessionId"].unique().to_list() == [9, 10]
    assert sessions(report, "train_tr") == [[1, 2, 3], [1, 2], [1, 3], [2, 3, 2]]
    assert sessions(report, "train_valid") == [[2, 3]]
    assert report.frames["test"].schema["Time"] == pl.Int64


def test_rees46_matches_reference(tmp_path, random_events, reference_protocol, reference_sessions,
                                  epoch, check_splits) -> None:
    ev = random_events(2, 1574553600000, 7)  # 2019-11-24 .. 2019-12-01
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
                         "Time": epoch(raw["event_time"], "%Y-%m-%d %H:%M:%S UTC", "s")})
    expected = reference_protocol(reference_sessions(data, "user", 3600), 1575158400, 86400)
    check_splits(run_recipe("rees46", [path]).frames, expected)
