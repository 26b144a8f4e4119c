"""retailrocket recipe (RecSys 2023 protocol): a hand-made events.csv with known counts
and splits, and a differential test against the plain pandas rendering of the protocol in
conftest.py."""

from __future__ import annotations

from io import StringIO

import pandas as pd
import pytest

pl = pytest.importorskip("polars")

from gru4rec.data.datasets import run_recipe  # noqa: E402

H_MS, D_MS = 3_600_000, 86_400_000


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


def test_retailrocket_known_answer(run_raw, steps, sessions, split_steps) -> None:
    report = run_raw("retailrocket", events__csv=_retailrocket_text())
    assert steps(report) == [
        ("view events", 25, 8, 5), ("sessions (1 hour gap)", 25, 9, 5),
        ("consecutive repeats removed", 24, 9, 5),
        ("round 1: sessions >= 2", 23, 8, 4), ("round 1: items >= 5", 23, 8, 4),
        ("round 2: sessions >= 2", 23, 8, 4), ("round 2: items >= 5", 23, 8, 4),
        *zip(split_steps, [10, 11, 5, 2, 7, 2], [2, 5, 2, 1, 3, 1], [4, 3, 3, 2, 3, 2],
             strict=True),
    ]
    assert report.cuts == {"end": _T, "test_start": _T - 7 * D_MS,
                           "valid_start": _T - 14 * D_MS}
    assert sessions(report, "train_full") == [[1, 2], [1, 3], [2, 3, 2], [1, 3], [3, 1]]
    assert report.frames["train_full"]["SessionId"].unique().to_list() == [1, 2, 3, 4, 5]
    assert sessions(report, "test") == [[1, 2], [3, 1, 2]]
    assert sessions(report, "train_tr") == [[1, 2], [1, 3], [2, 3, 2]]
    assert sessions(report, "train_valid") == [[3, 1]]


def test_retailrocket_matches_reference(tmp_path, random_events, reference_protocol,
                                        reference_sessions, check_splits) -> None:
    ev = random_events(4, _T - 25 * D_MS, 25, n_users=500)
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
    check_splits(run_recipe("retailrocket", [path]).frames, expected)


def test_keep_user_writes_each_sessions_visitor(run_raw, tmp_path) -> None:
    from gru4rec.data.datasets import preprocess
    from gru4rec.data.io import read_events

    plain = run_raw("retailrocket", events__csv=_retailrocket_text())
    (tmp_path / "events.csv").write_text(_retailrocket_text())
    kept = run_recipe("retailrocket", [tmp_path / "events.csv"], keep_user=True)
    for name, frame in kept.frames.items():
        assert frame.columns == ["SessionId", "ItemId", "Time", "UserId"]
        # the same splits, plus the user column
        assert frame.drop("UserId").equals(plain.frames[name]), name
    # a session belongs to one visitor, and the visitors are the raw ones
    full = kept.frames["train_full"]
    assert full.group_by("SessionId").agg(pl.col("UserId").n_unique())["UserId"].max() == 1
    assert sorted(kept.frames["test"]["UserId"].unique().to_list()) == [6, 7]
    # written, and read back with the user column by gru4rec run -uk UserId
    report = preprocess("retailrocket", [tmp_path / "events.csv"], tmp_path / "out",
                        keep_user=True)
    events = read_events(report.files["test"], user_key="UserId")
    assert events.user is not None and sorted(set(events.user.tolist())) == [6, 7]


def test_keep_user_is_refused_by_recipes_without_users(tmp_path) -> None:
    from gru4rec.errors import ConfigError

    path = tmp_path / "yoochoose-clicks.dat"
    path.write_text("1,2014-04-07T10:51:09.277Z,214536502,0\n")
    with pytest.raises(ConfigError, match="does not take the option.*keep_user"):
        run_recipe("yoochoose", [path], keep_user=True)
    with pytest.raises(ConfigError, match="keep_user needs user_col"):
        run_recipe("generic", [path], session_col="a", keep_user=True)
