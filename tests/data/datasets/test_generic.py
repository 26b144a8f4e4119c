"""generic recipe: a hand-made log with known answers (user sessions, text times, event
filter, thresholds), Parquet input, option errors, and a differential test against a plain
pandas rendering of the protocol with the recipe's options."""

from __future__ import annotations

import calendar

import numpy as np
import pandas as pd
import pytest

pl = pytest.importorskip("polars")

from gru4rec.data.datasets import SPLITS, run_recipe  # noqa: E402
from gru4rec.errors import ConfigError, DataError  # noqa: E402

# u1's click row is filtered out; u1's 11:02 view is 61 min after 10:01 (new session), its
# first session is [a, a] -> [a] (dropped); z has one event (min support 2); u4 starts
# exactly at T - d = 2020-01-03 12:00 (test).
LOG = """\
user,item,ts,type
u1,a,2020-01-01 10:00:00,view
u1,a,2020-01-01 10:01:00,view
u1,b,2020-01-01 10:02:00,click
u1,b,2020-01-01 11:02:00,view
u1,c,2020-01-01 11:03:00,view
u2,a,2020-01-02 09:00:00,view
u2,b,2020-01-02 09:30:00,view
u2,z,2020-01-02 09:31:00,view
u3,c,2020-01-03 08:00:00,view
u3,a,2020-01-03 08:10:00,view
u4,b,2020-01-03 12:00:00,view
u4,c,2020-01-03 12:05:00,view
u5,a,2020-01-04 12:00:00,view
u5,c,2020-01-04 12:00:00,view
"""
OPTIONS = dict(user_col="user", item_col="item", time_col="ts",
               time_format="%Y-%m-%d %H:%M:%S", event_filter=["type=view"],
               min_item_support=2)


def _sessions(frame) -> list[list]:
    return [g["ItemId"].to_list() for _, g in frame.group_by("SessionId", maintain_order=True)]


def test_known_answer(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    report = run_recipe("generic", [path], **OPTIONS)
    assert [(s.name, s.events, s.sessions, s.items) for s in report.steps] == [
        ("events kept (type=view)", 13, 5, 4), ("sessions (gap)", 13, 6, 4),
        ("consecutive repeats removed", 12, 6, 4),
        ("round 1: sessions >= 2", 11, 5, 4), ("round 1: items >= 2", 10, 5, 3),
        ("round 2: sessions >= 2", 10, 5, 3), ("round 2: items >= 2", 10, 5, 3),
        ("test (sessions starting >= cut)", 4, 2, 3), ("train_full", 6, 3, 3),
        ("test", 4, 2, 3), ("train_valid (sessions starting >= cut)", 2, 1, 2),
        ("train_tr", 4, 2, 3), ("train_valid", 2, 1, 2),
    ]
    end = calendar.timegm((2020, 1, 4, 12, 0, 0))
    assert report.cuts == {"end": end, "test_start": end - 86400,
                           "valid_start": end - 2 * 86400}
    frames = report.frames
    assert _sessions(frames["train_full"]) == [["b", "c"], ["a", "b"], ["c", "a"]]
    assert frames["train_full"]["SessionId"].to_list() == [2, 2, 3, 3, 4, 4]
    assert frames["test"].rows() == [(5, "b", end - 86400.0), (5, "c", end - 86100.0),
                                     (6, "a", float(end)), (6, "c", float(end))]
    assert _sessions(frames["train_tr"]) == [["b", "c"], ["a", "b"]]
    assert _sessions(frames["train_valid"]) == [["c", "a"]]


def test_split_by_time_cuts_a_session_that_spans_the_cut(tmp_path) -> None:
    # s2 runs across T - d (2020-01-03 12:00): by session start it is all training (its
    # events after the cut are dropped); by event time its last two events are test
    log = "s,item,ts\n" + "".join(f"{s},{i},{t}\n" for s, i, t in [
        (1, "a", "2020-01-01 10:00:00"), (1, "b", "2020-01-01 10:01:00"),
        (1, "c", "2020-01-01 10:02:00"), (2, "a", "2020-01-03 11:58:00"),
        (2, "b", "2020-01-03 11:59:00"),
        (2, "c", "2020-01-03 12:01:00"), (2, "a", "2020-01-03 12:02:00"),
        (3, "b", "2020-01-04 11:00:00"), (3, "c", "2020-01-04 12:00:00")])
    path = tmp_path / "log.csv"
    path.write_text(log)
    opts = dict(session_col="s", item_col="item", time_col="ts",
                time_format="%Y-%m-%d %H:%M:%S", min_item_support=1)
    by_start = run_recipe("generic", [path], **opts).frames
    by_time = run_recipe("generic", [path], split_by_time=True, **opts).frames
    assert _sessions(by_start["test"]) == [["b", "c"]]
    assert _sessions(by_start["train_full"]) == [["a", "b", "c"], ["a", "b"]]
    assert _sessions(by_time["test"]) == [["c", "a"], ["b", "c"]]
    assert _sessions(by_time["train_full"]) == [["a", "b", "c"], ["a", "b"]]
    with pytest.raises(ConfigError, match="split_by_time cuts at a time"):
        run_recipe("generic", [path], split_by_time=True, test_fraction=0.2, **opts)


def test_parquet_input_and_integer_ids(tmp_path) -> None:
    frame = pl.DataFrame({"SessionId": [1, 1, 2, 2, 3, 3, 4, 4],
                          "ItemId": [7, 8, 8, 7, 7, 8, 8, 7],
                          "Time": [0, 10, 100, 110, 200, 210, 90_000, 90_010]})
    path = tmp_path / "log.parquet"
    frame.write_parquet(path)
    report = run_recipe("generic", [path], min_item_support=1, test_days=1, dedup=False)
    assert report.frames["test"].rows() == [(4, 8, 90_000), (4, 7, 90_010)]
    assert report.frames["train_full"]["SessionId"].unique().to_list() == [1, 2, 3]
    assert report.frames["train_valid"].height == 0  # all training data is in one day
    assert report.time_unit == "s"


def test_text_ids_that_are_canonical_integers_become_integers(tmp_path) -> None:
    path = tmp_path / "log.tsv"
    path.write_text("SessionId\tItemId\tTime\n" + "".join(
        f"{s}\t{i}\t{t}\n" for s, i, t in [(1, 5, 0), (1, "06", 1), (2, 5, 100_000),
                                          (2, "06", 100_001), (3, 5, 200_000),
                                          (3, "06", 200_001)]))
    report = run_recipe("generic", [path], min_item_support=1)
    assert report.frames["train_full"].schema["SessionId"] == pl.Int64
    assert report.frames["train_full"].schema["ItemId"] == pl.String  # "06" is not canonical
    assert report.frames["test"].rows() == [(3, "5", 200_000), (3, "06", 200_001)]


def test_option_problems_are_all_listed(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    with pytest.raises(ConfigError) as info:
        run_recipe("generic", [path], session_col="s", user_col="u", test_days=1,
                   test_fraction=0.2, min_item_support=0, event_filter=["type"])
    message = str(info.value)
    for part in ("session_col or user_col", "test_days or test_fraction",
                 "min_item_support", "'type' is not column=value"):
        assert part in message


def test_missing_column_names_the_option(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    with pytest.raises(DataError, match="missing column Time"):
        run_recipe("generic", [path], user_col="user", item_col="item")


# ------------------------------------------------------------------ differential test


def _ref_min_length(df: pd.DataFrame, n: int) -> pd.DataFrame:
    sizes = df.groupby("SessionId").size()
    return df[df["SessionId"].isin(sizes[sizes >= n].index)]


def _ref_split(df, cut, n):
    starts = df.groupby("SessionId")["Time"].min()
    late = set(starts[starts >= cut].index)
    train = _ref_min_length(df[~df["SessionId"].isin(late) & (df["Time"] < cut)], n)
    test = df[df["SessionId"].isin(late)]
    return train, _ref_min_length(test[test["ItemId"].isin(set(train["ItemId"]))], n)


def _ref_fraction_cut(df, fraction):
    starts = df.groupby("SessionId")["Time"].min().reset_index().sort_values(
        ["Time", "SessionId"])
    n_test = max(1, round(fraction * len(starts)))
    return starts["Time"].iloc[len(starts) - n_test]


def reference(df, *, gap=None, support=5, length=2, dedup=True, days=None, fraction=None,
              day=86400):
    """The generic recipe, spelled out plainly (loops over users and sessions)."""
    if gap is not None:
        df = df.sort_values(["user", "Time"], kind="stable")
        ids, number, last = [], 0, (None, None)
        for u, t in zip(df["user"], df["Time"], strict=True):
            number += u != last[0] or t - last[1] > gap
            ids.append(number)
            last = (u, t)
        df = df.assign(SessionId=ids)
    df = df.sort_values(["SessionId", "Time", "ItemId"], kind="stable").reset_index(drop=True)
    if dedup:
        keep = []
        for _, group in df.groupby("SessionId", sort=False):
            items = group["ItemId"].tolist()
            keep += [ix for k, ix in enumerate(group.index) if k == 0 or items[k] != items[k - 1]]
        df = df.loc[sorted(keep)]
    while True:
        before = len(df)
        df = _ref_min_length(df, length)
        counts = df.groupby("ItemId").size()
        df = df[df["ItemId"].isin(counts[counts >= support].index)]
        if len(df) == before:
            break
    if fraction is None:
        end = df["Time"].max()
        cuts = (end - days * day, end - 2 * days * day)
        full, test = _ref_split(df, cuts[0], length)
        tr, valid = _ref_split(full, cuts[1], length)
    else:
        full, test = _ref_split(df, _ref_fraction_cut(df, fraction), length)
        tr, valid = _ref_split(full, _ref_fraction_cut(full, fraction), length)
    out = {"train_full": full, "test": test, "train_tr": tr, "train_valid": valid}
    return {k: v[["SessionId", "ItemId", "Time"]].reset_index(drop=True) for k, v in out.items()}


def _random_log(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows, weights = [], 1.0 / np.arange(1, 51) ** 1.1
    for user in range(300):
        t = int(rng.integers(0, 12 * 86_400_000))
        for _ in range(int(rng.integers(1, 12))):
            item = int(rng.choice(50, p=weights / weights.sum()))
            if rows and rows[-1][0] == user and rng.random() < 0.3:
                item = rows[-1][1]
            rows.append((user, item, t, rng.choice(["view", "view", "view", "buy"])))
            t += int(rng.choice([0, 5_000, 300_000, 1_800_000, 1_800_001, 7_200_000]))
    return pd.DataFrame(rows, columns=["user", "ItemId", "Time", "kind"])


@pytest.mark.parametrize("case", ["user-gap-ms", "sessions-fraction"])
def test_matches_plain_pandas_reference(tmp_path, case: str) -> None:
    log = _random_log(7 if case == "user-gap-ms" else 8)
    path = tmp_path / "log.csv"
    log.rename(columns={"ItemId": "product", "Time": "ms"}).to_csv(path, index=False)
    views = log[log["kind"] == "view"]
    if case == "user-gap-ms":
        got = run_recipe("generic", [path], user_col="user", item_col="product", time_col="ms",
                         time_unit="ms", session_gap=1800, event_filter=["kind=view"],
                         min_item_support=3, min_session_length=3, dedup=False, test_days=2)
        expected = reference(views, gap=1_800_000, support=3, length=3, dedup=False, days=2,
                             day=86_400_000)
    else:
        got = run_recipe("generic", [path], session_col="user", item_col="product",
                         time_col="ms", event_filter=["kind=view"], test_fraction=0.15)
        expected = reference(views.rename(columns={"user": "SessionId"}), fraction=0.15)
    for name in SPLITS:
        assert len(expected[name]) > 10, name
        pd.testing.assert_frame_equal(got.frames[name].to_pandas(), expected[name],
                                      check_exact=True, check_dtype=False)
