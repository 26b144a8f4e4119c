"""rsc15 recipe: a hand-made yoochoose-clicks.dat with known answers, and a differential test
against a plain pandas rendering of the paper's protocol."""

from __future__ import annotations

import calendar

import numpy as np
import pandas as pd
import pytest

pl = pytest.importorskip("polars")

from gru4rec.data.datasets import SPLITS, run_recipe  # noqa: E402


def _ts(day: int, hh: int, mm: int, ss: int = 0, ms: int = 0) -> float:
    return (calendar.timegm((2014, 4, day, hh, mm, ss)) * 1000 + ms) / 1000


@pytest.fixture
def report(tmp_path, rsc15_clicks: str):
    """The recipe run on the hand-made yoochoose-clicks.dat of conftest.py (its comment says
    which session and item is there for what)."""
    path = tmp_path / "yoochoose-clicks.dat"
    path.write_text(rsc15_clicks)
    return run_recipe("rsc15", [path])


def test_counts_after_every_step(report) -> None:
    steps = [(s.name, s.events, s.sessions, s.items) for s in report.steps]
    assert steps == [
        ("read", 37, 14, 7),
        ("sessions >= 2", 36, 13, 7),  # S5
        ("items >= 5", 28, 12, 5),  # R (4 events) and D (4 events once S5 is gone)
        ("sessions >= 2 (again)", 26, 10, 5),  # S3 and S7 were left with one C
        ("train_full", 12, 5, 4),
        ("test (sessions ending >= cut)", 14, 5, 5),
        ("test", 8, 3, 4),  # X dropped: S12 is left with one event, S13 with none
        ("train_tr", 8, 3, 3),
        ("train_valid (sessions ending >= cut)", 4, 2, 4),
        ("train_valid", 2, 1, 2),  # S9 keeps only A
    ]


def test_exact_splits(report) -> None:
    rows = {name: report.frames[name].rows() for name in SPLITS}
    assert rows["train_full"] == [
        (1, 1001, _ts(1, 10, 0)), (1, 1001, _ts(1, 10, 1)), (1, 1002, _ts(1, 10, 2)),
        (2, 1002, _ts(2, 10, 0)), (2, 1003, _ts(2, 10, 1)), (2, 1001, _ts(2, 10, 2)),
        (6, 1001, _ts(5, 10, 1)), (6, 1002, _ts(5, 10, 3)),
        (8, 1002, _ts(5, 19, 0)), (8, 1003, _ts(6, 9, 0)),
        (9, 1001, _ts(6, 20, 0)), (9, 1005, _ts(6, 20, 1)),
    ]
    assert rows["test"] == [
        (10, 1001, _ts(7, 11, 0)), (10, 1002, _ts(7, 11, 30)), (10, 1003, _ts(7, 13, 0)),
        (11, 1005, _ts(8, 10, 0)), (11, 1005, _ts(8, 10, 1)), (11, 1001, _ts(8, 10, 2)),
        (14, 1005, _ts(8, 12, 0)), (14, 1005, _ts(8, 12, 0, 30, 123)),
    ]
    assert [r[:2] for r in rows["train_tr"]] == [(1, 1001), (1, 1001), (1, 1002), (2, 1002),
                                                 (2, 1003), (2, 1001), (6, 1001), (6, 1002)]
    assert rows["train_valid"] == [(8, 1002, _ts(5, 19, 0)), (8, 1003, _ts(6, 9, 0))]
    assert report.cuts == {"test_end": _ts(8, 12, 0, 30, 123),
                           "test_start": _ts(8, 12, 0, 30, 123) - 86400,
                           "valid_end": _ts(6, 20, 1), "valid_start": _ts(6, 20, 1) - 86400}


def test_times_are_float_seconds_that_round_trip(report) -> None:
    test = report.frames["test"]
    assert test.schema["Time"] == pl.Float64
    assert repr(test["Time"][-1]) == "1396958430.123"
    stats = report.splits["test"]
    assert (stats.events, stats.sessions, stats.items) == (8, 3, 4)
    assert (stats.length_min, stats.length_max) == (2, 3)
    assert stats.last_utc == "2014-04-08 12:00:30 UTC"


# ---------------------------------------------------------------- differential test


def _random_clicks(seed: int, n_sessions: int = 900) -> str:
    """Random yoochoose-clicks.dat text: short sessions, rare items, repeats, ties."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 81) ** 1.3
    lines = []
    for session in rng.permutation(np.arange(1, n_sessions + 1)):
        start = 1396310400000 + int(rng.integers(0, 10 * 86_400_000))
        length = int(rng.choice([1, 1, 2, 2, 3, 4, 6]))
        times = start + np.sort(rng.integers(0, 7_200_000, length))
        times[1:][rng.random(length - 1) < 0.1] = times[0]  # some equal times
        items = 214_000_000 + rng.choice(80, size=length, p=weights / weights.sum())
        for i in range(1, length):
            if rng.random() < 0.3:
                items[i] = items[i - 1]
        for t, item in zip(times, items, strict=True):
            stamp = pd.Timestamp(int(t), unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")
            lines.append(f"{session},{stamp[:-3]}Z,{item},{rng.choice(['0', 'S', '7'])}\n")
    return "".join(lines)


def _reference(text: str) -> dict[str, pd.DataFrame]:
    """The rsc15 protocol, spelled out plainly with pandas."""
    from io import StringIO

    raw = pd.read_csv(StringIO(text), header=None, names=["s", "t", "i", "c"], dtype=str)
    stamps = pd.to_datetime(raw["t"], format="%Y-%m-%dT%H:%M:%S.%fZ", utc=True)
    ms = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    data = pd.DataFrame({"SessionId": raw["s"].astype("int64"), "ItemId": raw["i"]
                         .astype("int64"), "Time": ms.to_numpy(dtype="int64") / 1000})

    def sessions_at_least(df: pd.DataFrame, n: int) -> pd.DataFrame:
        sizes = df.groupby("SessionId").size()
        return df[df["SessionId"].isin(sizes[sizes >= n].index)]

    data = sessions_at_least(data, 2)
    support = data.groupby("ItemId").size()
    data = data[data["ItemId"].isin(support[support >= 5].index)]
    data = sessions_at_least(data, 2)

    def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        last = df.groupby("SessionId")["Time"].max()
        late = last[last >= df["Time"].max() - 86400].index
        train, test = df[~df["SessionId"].isin(late)], df[df["SessionId"].isin(late)]
        test = sessions_at_least(test[test["ItemId"].isin(set(train["ItemId"]))], 2)
        return train, test

    full, test = split(data)
    tr, valid = split(full)
    out = {"train_full": full, "test": test, "train_tr": tr, "train_valid": valid}
    return {name: df.sort_values(["SessionId", "Time", "ItemId"], kind="stable")
            .reset_index(drop=True) for name, df in out.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_plain_pandas_reference(tmp_path, seed: int) -> None:
    text = _random_clicks(seed)
    path = tmp_path / "clicks.dat"
    path.write_text(text)
    got = run_recipe("rsc15", [path]).frames
    expected = _reference(text)
    for name in SPLITS:
        assert len(expected[name]) > 20, name  # the data exercises every split
        frame = got[name].to_pandas()
        pd.testing.assert_frame_equal(frame, expected[name][["SessionId", "ItemId", "Time"]],
                                      check_exact=True, check_dtype=False)
