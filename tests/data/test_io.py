"""Tests of gru4rec.data.io.read_events: every input format and every bad input."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gru4rec.data.events import Events
from gru4rec.data.io import read_events
from gru4rec.errors import DataError

SESSIONS = ["s1", "s1", "s2", "s2", "s2"]
ITEMS_STR = ["007", "a1", "42", "007", "x"]
TIMES = [10.5, 11.0, 3.0, 4.25, 1e9]


def write_text(path: Path, header: list[str], rows: list[list[Any]], sep: str) -> Path:
    lines = [sep.join(header)] + [sep.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def frame(items: list[Any] | None = None, **names: str) -> pd.DataFrame:
    cols = {"session": "SessionId", "item": "ItemId", "time": "Time", **names}
    return pd.DataFrame(
        {
            cols["session"]: SESSIONS,
            cols["item"]: ITEMS_STR if items is None else items,
            cols["time"]: TIMES,
        }
    )


def assert_events(ev: Events, session: list[Any], item: list[Any], time: list[float]) -> None:
    assert isinstance(ev, Events)
    assert ev.session.tolist() == session
    assert ev.item.tolist() == item
    assert ev.time.dtype == np.float64
    np.testing.assert_array_equal(ev.time, np.asarray(time, dtype=np.float64))


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(("name", "sep"), [("e.tsv", "\t"), ("e.txt", "\t"), ("e.csv", ",")])
def test_text_round_trip_string_ids(tmp_path: Path, name: str, sep: str) -> None:
    rows = [list(r) for r in zip(SESSIONS, ITEMS_STR, TIMES, strict=False)]
    path = write_text(tmp_path / name, ["SessionId", "ItemId", "Time"], rows, sep)
    ev = read_events(path)
    assert_events(ev, SESSIONS, ITEMS_STR, TIMES)
    assert ev.item.dtype == object and all(type(x) is str for x in ev.item)


@pytest.mark.parametrize(("name", "sep"), [("e.tsv", "\t"), ("e.txt", "\t"), ("e.csv", ",")])
def test_text_round_trip_int_ids(tmp_path: Path, name: str, sep: str) -> None:
    rows = [[1, 5, 100], [1, -3, 101], [2, 0, 50], [2, 123456789012, 51]]
    path = write_text(
        tmp_path / name,
        ["Time", "Extra", "ItemId", "SessionId"],
        [[t, "z", i, s] for s, i, t in rows],
        sep,
    )
    ev = read_events(str(path))
    assert ev.session.dtype == np.int64 and ev.item.dtype == np.int64
    assert_events(ev, [1, 1, 2, 2], [5, -3, 0, 123456789012], [100, 101, 50, 51])


@pytest.mark.parametrize("odd", ["007", "+5", "-0", "5.0", "1e3", "99999999999999999999"])
def test_text_non_canonical_ints_stay_strings(tmp_path: Path, odd: str) -> None:
    path = write_text(
        tmp_path / "e.tsv", ["SessionId", "ItemId", "Time"], [[1, "12", 1], [1, odd, 2]], "\t"
    )
    ev = read_events(path)
    assert ev.item.tolist() == ["12", odd]
    assert ev.session.dtype == np.int64


def test_text_custom_column_names_and_string_times(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "e.csv", ["sid", "iid", "ts"], [["a", "b", " 1.5 "], ["a", "c", "2e3"]], ","
    )
    ev = read_events(path, session_key="sid", item_key="iid", time_key="ts")
    assert_events(ev, ["a", "a"], ["b", "c"], [1.5, 2000.0])


def test_text_quoted_fields(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text('SessionId,ItemId,Time\n1,"a,b",1\n1,"007",2\n')
    assert read_events(path).item.tolist() == ["a,b", "007"]


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    table = pa.table({"s": [3, 3, 1], "i": ["007", "a1", "9"], "t": [1.0, 2.0, 0.5], "x": [0] * 3})
    pq.write_table(table, path)
    ev = read_events(path, session_key="s", item_key="i", time_key="t")
    assert ev.session.dtype == np.int64
    assert_events(ev, [3, 3, 1], ["007", "a1", "9"], [1.0, 2.0, 0.5])


def test_parquet_timestamp_and_int_ids(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    stamps = pa.array([0, 1_500, 2_000_000], type=pa.timestamp("ms"))
    pq.write_table(
        pa.table(
            {"SessionId": pa.array([1, 1, 2], pa.int32()), "ItemId": [10, 20, 30], "Time": stamps}
        ),
        path,
    )
    ev = read_events(path)
    assert ev.session.dtype == np.int64 and ev.item.dtype == np.int64
    assert_events(ev, [1, 1, 2], [10, 20, 30], [0.0, 1.5, 2000.0])


@pytest.mark.parametrize("name", ["e.pickle", "e.pkl"])
def test_pickle_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    frame().to_pickle(path)
    assert_events(read_events(path), SESSIONS, ITEMS_STR, TIMES)


def test_pandas_round_trip_and_custom_names() -> None:
    df = frame(session="S", item="I", time="T")
    ev = read_events(df, session_key="S", item_key="I", time_key="T")
    assert_events(ev, SESSIONS, ITEMS_STR, TIMES)
    ints = read_events(frame(items=[5, 6, 7, 8, 9]))
    assert ints.item.dtype == np.int64 and ints.item.tolist() == [5, 6, 7, 8, 9]


def test_pandas_datetime_and_categorical() -> None:
    df = frame()
    df["ItemId"] = df["ItemId"].astype("category")
    df["Time"] = pd.to_datetime([0, 1, 2, 3, 4], unit="s", utc=True)
    ev = read_events(df)
    assert_events(ev, SESSIONS, ITEMS_STR, [0, 1, 2, 3, 4])


def test_pandas_numeric_string_times() -> None:
    df = frame()
    df["Time"] = ["1", "2.5", "3", "4", "5"]
    assert read_events(df).time.tolist() == [1.0, 2.5, 3.0, 4.0, 5.0]


def test_polars_round_trip() -> None:
    df = pl.DataFrame({"SessionId": [1, 1, 2], "ItemId": ["007", "a1", "x"], "Time": [3, 2, 1]})
    ev = read_events(df)
    assert ev.session.dtype == np.int64
    assert_events(ev, [1, 1, 2], ["007", "a1", "x"], [3.0, 2.0, 1.0])
    cat = df.with_columns(pl.col("ItemId").cast(pl.Categorical))
    assert read_events(cat).item.tolist() == ["007", "a1", "x"]


def test_events_returned_as_is() -> None:
    ev = Events(np.array([1, 1]), np.array([3, 4]), np.array([0.0, 1.0]))
    assert read_events(ev) is ev


def test_rows_keep_original_order(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "e.tsv", ["SessionId", "ItemId", "Time"], [[2, 1, 9], [1, 2, 5], [2, 3, 1]], "\t"
    )
    assert_events(read_events(path), [2, 1, 2], [1, 2, 3], [9, 5, 1])


@pytest.mark.realdata
def test_real_yoochoose_test_split(require_realdata: Callable[..., Path]) -> None:
    folder = require_realdata()
    ev = read_events(folder / "yoochoose-clicks-100k_test.txt")
    assert len(ev) == 13_568
    assert len(np.unique(ev.session)) == 3_416
    assert ev.item.dtype == np.int64
    assert ev.time.dtype == np.float64


# ---------------------------------------------------------------- bad inputs

HEADER = "SessionId\tItemId\tTime\n"


def _text(body: str, name: str = "e.tsv") -> Any:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(body.encode())
        return path

    return make


def _bytes(data: bytes, name: str) -> Any:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return make


def _pickled(obj: object, name: str = "e.pkl") -> Any:
    return _bytes(pickle.dumps(obj), name)


def _parquet(table: pa.Table) -> Any:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / "e.parquet"
        pq.write_table(table, path)
        return path

    return make


BAD_FILES = {
    "missing_file": (lambda p: p / "nope.tsv", r"nope\.tsv: file does not exist"),
    "directory": (lambda p: p, r"is a directory"),
    "extension": (_text(HEADER, "e.json"), r"unsupported file extension '\.json'.*\.parquet"),
    "no_extension": (_text(HEADER, "events"), r"unsupported file extension '\(none\)'"),
    "corrupt_parquet": (
        _bytes(b"\x00garbage\xff" * 50, "e.parquet"),
        r"e\.parquet: cannot be read as a Parquet file",
    ),
    "corrupt_pickle": (
        _bytes(b"\x80\x04garbage", "e.pickle"),
        r"cannot be read as a pickled pandas DataFrame",
    ),
    "pickle_not_frame": (_pickled([1, 2, 3]), r"holds a list, not a DataFrame"),
    "empty_file": (_text(""), r"e\.tsv: file is empty \(0 bytes\)"),
    "header_only": (_text(HEADER), r"e\.tsv: has no events"),
    "header_only_no_newline": (_text(HEADER.strip()), r"has no events"),
    "header_only_csv": (_text("SessionId,ItemId,Time\n", "e.csv"), r"has no events"),
    "empty_parquet": (
        _parquet(
            pa.table(
                {
                    "SessionId": pa.array([], pa.int64()),
                    "ItemId": pa.array([], pa.int64()),
                    "Time": pa.array([], pa.float64()),
                }
            )
        ),
        r"has no events",
    ),
    "missing_column": (
        _text("SessionId\tItem\tTime\n1\t2\t3\n"),
        r"missing column\(s\) 'ItemId'; found columns: 'SessionId', 'Item', 'Time'; "
        + r"use --session_key/--item_key/--time_key",
    ),
    "missing_parquet_columns": (
        _parquet(pa.table({"a": [1], "Time": [1.0]})),
        r"missing column\(s\) 'SessionId', 'ItemId'; found columns: 'a'",
    ),
    "tsv_is_csv": (
        _text("SessionId,ItemId,Time\n1,2,3\n"),
        r"looks comma-separated; use a \.csv extension",
    ),
    "csv_is_tsv": (
        _text(HEADER + "1\t2\t3\n", "e.csv"),
        r"looks tab-separated; use a \.tsv extension",
    ),
    "null_sessions": (
        _text(HEADER + "1\t2\t3\n\t2\t4\n\t5\t6\n"),
        r"2 event\(s\) have a missing session id \(column 'SessionId'\)",
    ),
    "null_items": (_text(HEADER + "1\t\t3\n"), r"1 event\(s\) have a missing item id"),
    "null_times": (_text(HEADER + "1\t2\t\n"), r"1 event\(s\) have a missing time"),
    "non_numeric_time": (
        _text(HEADER + "1\t2\t3\n1\t2\tyesterday\n"),
        r"time column 'Time' has 1 non-numeric value\(s\), e\.g\. 'yesterday'",
    ),
    "nan_time": (_text(HEADER + "1\t2\t3\n1\t2\tnan\n"), r"1 NaN or infinite value\(s\)"),
    "inf_time": (
        _text(HEADER + "1\t2\tinf\n", "e.txt"),
        r"NaN or infinite value\(s\), e\.g\. inf at row 0",
    ),
    "duplicate_columns": (
        _text("SessionId\tItemId\tTime\tItemId\n1\t2\t3\t4\n"),
        r"duplicate column name\(s\) 'ItemId'",
    ),
    "ragged_rows": (_text(HEADER + "1\t2\t3\n1\t2\n"), r"cannot be read as a tab-separated"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files(tmp_path: Path, case: str) -> None:
    make, pattern = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(DataError, match=pattern) as info:
        read_events(path)
    assert "\n" not in str(info.value)


def _bad_events() -> Events:
    return Events(np.array([1, 2]), np.array([1, 2, 3]), np.array([0.0, 1.0]))


BAD_OBJECTS = {
    "list": (lambda: [1, 2, 3], r"unsupported source of type list.*pandas or polars DataFrame"),
    "dict": (lambda: {"SessionId": [1]}, r"unsupported source of type dict"),
    "events_lengths": (_bad_events, r"different lengths \(session=2, item=3, time=2\)"),
    "events_int_time": (
        lambda: Events(np.array([1]), np.array([1]), np.array([1])),
        r"time has dtype int64, not float64",
    ),
    "events_nan_time": (
        lambda: Events(np.array([1]), np.array([1]), np.array([np.nan])),
        r"NaN or infinite",
    ),
    "pandas_missing": (
        lambda: frame().drop(columns="Time"),
        r"pandas DataFrame: missing column\(s\) 'Time'",
    ),
    "pandas_duplicate": (
        lambda: pd.concat([frame(), frame()[["ItemId"]]], axis=1),
        r"duplicate column name\(s\) 'ItemId'",
    ),
    "pandas_null_items": (
        lambda: frame(items=["a", None, "b", "c", "d"]),
        r"1 event\(s\) have a missing item id",
    ),
    "pandas_mixed_ids": (lambda: frame(items=[1, "a", 2, 3, 4]), r"cannot be converted"),
    "pandas_text_time": (
        lambda: frame().assign(Time=["1", "x", "2", "3", "4"]),
        r"non-numeric value\(s\), e\.g\. 'x'",
    ),
    "pandas_bool_time": (
        lambda: frame().assign(Time=[True] * 5),
        r"time column 'Time' has type bool",
    ),
    "pandas_empty": (lambda: frame().iloc[:0], r"pandas DataFrame: has no events"),
    "polars_null_sessions": (
        lambda: pl.DataFrame({"SessionId": [1, None], "ItemId": [1, 2], "Time": [1.0, 2.0]}),
        r"polars DataFrame: 1 event\(s\) have a missing session id",
    ),
    "polars_inf_time": (
        lambda: pl.DataFrame({"SessionId": [1], "ItemId": [1], "Time": [float("inf")]}),
        r"NaN or infinite",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_OBJECTS))
def test_bad_objects(case: str) -> None:
    make, pattern = BAD_OBJECTS[case]
    with pytest.raises(DataError, match=pattern):
        read_events(make())


def test_same_key_twice_is_rejected() -> None:
    with pytest.raises(DataError, match="must name different columns"):
        read_events(frame(), item_key="SessionId")
    with pytest.raises(DataError, match="user_key='Time' must name different columns"):
        read_events(frame(), user_key="Time")


@pytest.mark.parametrize("name", ["e.tsv", "e.parquet", "pandas", "polars"])
def test_a_user_column_is_read_when_named(tmp_path: Path, name: str) -> None:
    users = ["7", "7", "12", "12", "7"]
    table = {"SessionId": SESSIONS, "ItemId": ITEMS_STR, "Time": TIMES, "UserId": users}
    source: Any
    if name == "e.tsv":
        source = write_text(tmp_path / name, list(table), [list(r) for r in zip(
            *table.values(), strict=True)], "\t")
    elif name == "e.parquet":
        source = tmp_path / name
        pq.write_table(pa.table(table), source)
    else:
        source = pd.DataFrame(table) if name == "pandas" else pl.DataFrame(table)
    ev = read_events(source, user_key="UserId")
    want = [7, 7, 12, 12, 7] if name == "e.tsv" else users  # text files parse canonical ints
    assert ev.user is not None and list(ev.user) == want
    assert read_events(source).user is None  # only read when asked for
    with pytest.raises(DataError, match="missing column.*'Visitor'"):
        read_events(source, user_key="Visitor")


def test_missing_user_ids_and_user_less_events_are_refused(tmp_path: Path) -> None:
    path = write_text(tmp_path / "e.tsv", ["SessionId", "ItemId", "Time", "UserId"],
                      [[1, 2, 3.0, 5], [1, 3, 4.0, ""]], "\t")
    with pytest.raises(DataError, match="1 event.*missing user id"):
        read_events(path, user_key="UserId")
    plain = Events(np.array([1]), np.array([2]), np.array([3.0]))
    with pytest.raises(DataError, match="no user column"):
        read_events(plain, user_key="UserId")
    with pytest.raises(DataError, match="different lengths"):
        read_events(Events(np.array([1]), np.array([2]), np.array([3.0]), np.array([1, 2])))


def test_error_names_custom_keys(tmp_path: Path) -> None:
    path = write_text(tmp_path / "e.csv", ["a", "b", "c"], [[1, 2, 3]], ",")
    with pytest.raises(DataError, match=r"missing column\(s\) 'sid'; found columns: 'a', 'b'"):
        read_events(path, session_key="sid", item_key="b", time_key="c")
