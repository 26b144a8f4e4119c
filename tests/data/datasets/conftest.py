"""Fixtures of the preprocessing-recipe tests: running a recipe on hand-written raw files,
reading its report, and a plain pandas rendering of the RecSys 2023 protocol (steps 3-6) with
random raw events to compare the yoochoose, rees46, coveo, retailrocket and diginetica recipes
against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from gru4rec.data.datasets import SPLITS, run_recipe

H_MS, D_MS = 3_600_000, 86_400_000
SPLIT_STEPS = ["test (sessions starting >= cut)", "train_full", "test",
               "train_valid (sessions starting >= cut)", "train_tr", "train_valid"]


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


# ----------------------------------------------------------------------------- reference


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


def _reference_protocol(df: pd.DataFrame, end: float | None, window: float) -> dict:
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


def _reference_sessions(df: pd.DataFrame, user: str, gap: int) -> pd.DataFrame:
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


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def run_raw(tmp_path) -> Callable[..., object]:
    """``run_raw(dataset, name__ext=text, ...)``: write each raw file (``__`` -> ``.``, ``_`` ->
    ``-`` in its name) into tmp_path and run the recipe on them; returns the report."""
    return lambda dataset, **files: _run(tmp_path, dataset, **files)


@pytest.fixture(scope="session")
def steps() -> Callable[[object], list[tuple]]:
    """``steps(report)``: (name, events, sessions, items) of every step of a report."""
    return _steps


@pytest.fixture(scope="session")
def sessions() -> Callable[[object, str], list[list]]:
    """``sessions(report, split)``: the items of each session of a split, in id order."""
    return _sessions


@pytest.fixture(scope="session")
def split_steps() -> list[str]:
    """The names of the six split steps every RecSys 2023 recipe reports last."""
    return list(SPLIT_STEPS)


@pytest.fixture(scope="session")
def random_events() -> Callable[..., pd.DataFrame]:
    """``random_events(seed, start_ms, span_days, n_users=350)``: columns user, item, ms, kind
    (view or cart); gaps of minutes, exactly 1 h, 1 h + 1 unit or days."""
    return _random_events


@pytest.fixture(scope="session")
def reference_protocol() -> Callable[..., dict]:
    """``reference_protocol(df, end, window)``: the four splits by the plain pandas rendering
    (``end`` None: the last event)."""
    return _reference_protocol


@pytest.fixture(scope="session")
def reference_sessions() -> Callable[..., pd.DataFrame]:
    """``reference_sessions(df, user, gap)``: sessions from a user column (a gap > ``gap``
    starts one), numbered by (user, start)."""
    return _reference_sessions


@pytest.fixture(scope="session")
def epoch() -> Callable[[pd.Series, str, str], pd.Series]:
    """``epoch(values, fmt, unit)``: UTC time stamps in format ``fmt`` as whole ``unit``s
    (pandas unit names: "ms", "s", "D") since the epoch."""
    return _epoch


@pytest.fixture(scope="session")
def check_splits() -> Callable[[dict, dict], None]:
    """``check_splits(got_frames, expected)``: every split equal to the reference, and each
    reference split big enough (> 10 events) to exercise it."""
    return _check
