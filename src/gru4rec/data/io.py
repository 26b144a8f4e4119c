"""Reading session click logs from files and DataFrames into :class:`Events`.

Everything is vectorised with pyarrow/NumPy; pandas and polars are imported only when a
DataFrame (or a pickle) is given, so neither is a hard dependency.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gru4rec.data.events import CANONICAL_INT_REGEX, Events
from gru4rec.errors import DataError

__all__ = ["read_events"]

logger = logging.getLogger(__name__)

_DELIMITERS = {".tsv": "\t", ".txt": "\t", ".csv": ","}
_SUPPORTED = (".tsv", ".txt", ".csv", ".parquet", ".pickle", ".pkl")
_FLOAT_RE = r"^[-+]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?|nan|inf|infinity)$"
_KEY_HINT = (
    "use --session_key/--item_key/--time_key/--user_key (CLI) or session_key=/item_key=/"
    "time_key=/user_key= to name them"
)
_TEXT_TYPES = (pa.string(), pa.large_string())
_TIME_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_ARROW_ERRORS = (pa.ArrowException, TypeError, ValueError, OSError)
# What a corrupt or foreign pickle typically raises while being loaded.
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, LookupError)


def read_events(
    source: Any,
    *,
    session_key: str = "SessionId",
    item_key: str = "ItemId",
    time_key: str = "Time",
    user_key: str | None = None,
) -> Events:
    """Read a click log into :class:`Events`, keeping the rows in their original order.

    Args:
        source: a path (``str`` or ``os.PathLike``) to a ``.tsv``/``.txt`` (tab separated) or
            ``.csv`` file with a header line, a ``.parquet`` file, a ``.pickle``/``.pkl`` file
            holding a pickled pandas DataFrame (unpickling runs code: trusted files only), an
            in-memory pandas or polars DataFrame, or an :class:`Events` (validated, returned).
        session_key, item_key, time_key: names of the session id, item id and time columns.
        user_key: name of a user id column to read too (sequence-aware training and
            evaluation); None: no user column.

    Returns:
        Events whose ids are int64 when every id is a canonical integer in a text file (or the
        native dtype for DataFrames/Parquet, strings as object arrays of ``str``) and whose
        times are float64 (timestamps become seconds since the epoch).

    Raises:
        DataError: the source is missing, unreadable, malformed, empty or lacks a column.
    """
    if isinstance(source, Events):
        _validate_events(source)
        if user_key is not None and source.user is None:
            raise DataError("the Events have no user column (user=None) but user_key was "
                            "given; build them with Events(..., user=...)")
        return source
    keys: tuple[str, ...] = (session_key, item_key, time_key)
    if user_key is not None:
        keys += (user_key,)
    if len(set(keys)) != len(keys):
        named = f"session_key={session_key!r}, item_key={item_key!r}, time_key={time_key!r}"
        named += f", user_key={user_key!r}" if user_key is not None else ""
        raise DataError(f"{named} must name different columns; pass distinct column names")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        table, parse_ids = _read_path(path, keys), path.suffix.lower() in _DELIMITERS
        origin = str(path)
    elif _frame_kind(source) is not None:
        origin = f"{_frame_kind(source)} DataFrame"
        table, parse_ids = _from_frame(source, keys, origin), False
    else:
        raise DataError(
            f"read_events: unsupported source of type {type(source).__name__}; pass a path "
            f"(str or os.PathLike) to a {'/'.join(_SUPPORTED)} file, a pandas or polars "
            "DataFrame, or an Events instance"
        )
    events = _table_to_events(table, keys, origin, parse_ids)
    logger.info("read %d events from %s", len(events), origin)
    return events


def _frame_kind(obj: object) -> str | None:
    """Return 'pandas' or 'polars' when ``obj`` is such a DataFrame, else None."""
    for cls in type(obj).__mro__:
        if cls.__name__ == "DataFrame":
            for lib in ("pandas", "polars"):
                if cls.__module__.startswith(lib):
                    return lib
    return None


def _read_path(path: Path, keys: tuple[str, ...]) -> pa.Table:
    """Check a file path and read the three key columns from it."""
    if not path.exists():
        raise DataError(f"{path}: file does not exist; check the path and working directory")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass the path of a data file inside it")
    suffix = path.suffix.lower()
    if suffix not in _SUPPORTED:
        raise DataError(
            f"{path}: unsupported file extension {suffix or '(none)'!r}; supported: "
            f"{', '.join(_SUPPORTED)} (rename the file or convert it)"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes); it has no events")
    if suffix in _DELIMITERS:
        return _read_text(path, _DELIMITERS[suffix], keys)
    if suffix == ".parquet":
        return _read_parquet(path, keys)
    return _read_pickle(path, keys)


def _unreadable(path: Path, what: str, exc: BaseException) -> DataError:
    """A DataError for a file the library could not parse, with the cause on one line."""
    detail = _one_line(exc) or type(exc).__name__
    return DataError(f"{path}: cannot be read as {what} ({detail}); check the file")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """The message of ``exc`` on one short ASCII line (file bytes may be garbage)."""
    text = " ".join(str(exc).split()).encode("ascii", "backslashreplace").decode()
    return text[:limit]


def _check_columns(found: list[Any], keys: tuple[str, ...], origin: str) -> None:
    """Raise DataError for duplicated or missing key columns."""
    dups = [k for k in keys if found.count(k) > 1]
    if dups:
        raise DataError(
            f"{origin}: duplicate column name(s) {', '.join(map(repr, dups))}; "
            "rename the columns so that each name appears once"
        )
    missing = [k for k in keys if k not in found]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {', '.join(map(repr, missing))}; found columns: "
            f"{_shown(found)}; {_KEY_HINT}"
        )


def _shown(names: list[Any], most: int = 20) -> str:
    """A short, ASCII, comma-separated listing of column names."""
    shown = [ascii(n)[:60] for n in names[:most]] + (["..."] if len(names) > most else [])
    return ", ".join(shown) or "(none)"


def _read_text(path: Path, delimiter: str, keys: tuple[str, ...]) -> pa.Table:
    """Read a delimited text file, ids as strings and time as strings (converted later)."""
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=delimiter)
    try:
        with open(path, "rb") as fh:
            header = (fh.readline(1 << 20).splitlines() or [b""])[0] + b"\n"
            header_only = not fh.read(4096).strip()
        found = pacsv.read_csv(io.BytesIO(header), parse_options=parse).column_names
    except _ARROW_ERRORS as exc:
        raise _unreadable(path, "a delimited text file", exc) from None
    if len(found) == 1:
        other = "," if delimiter == "\t" else "\t"
        if other in found[0]:
            fix = "comma-separated; use a .csv" if other == "," else "tab-separated; use a .tsv"
            raise DataError(f"{path}: looks {fix} extension (only one column was found)")
    _check_columns(found, keys, str(path))
    if header_only:
        raise DataError(f"{path}: has no events (only a header line); add event rows")
    convert = pacsv.ConvertOptions(
        include_columns=list(keys),
        column_types={k: pa.string() for k in keys},
        null_values=[""],
        strings_can_be_null=True,
    )
    try:
        return pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    except _ARROW_ERRORS as exc:
        kind = "a tab-separated file" if delimiter == "\t" else "a comma-separated file"
        raise _unreadable(path, kind, exc) from None


def _read_parquet(path: Path, keys: tuple[str, ...]) -> pa.Table:
    """Read the key columns of a Parquet file."""
    import pyarrow.parquet as pq

    try:
        found = pq.read_schema(path).names
    except _ARROW_ERRORS as exc:
        raise _unreadable(path, "a Parquet file", exc) from None
    _check_columns(found, keys, str(path))
    try:
        return pq.read_table(path, columns=list(keys))
    except _ARROW_ERRORS as exc:
        raise _unreadable(path, "a Parquet file", exc) from None


def _read_pickle(path: Path, keys: tuple[str, ...]) -> pa.Table:
    """Unpickle a DataFrame (trusted files only) and take its key columns."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise DataError(f"{path}: reading pickles needs pandas; install pandas") from None
    try:
        frame = pd.read_pickle(path)
    except (*_PICKLE_ERRORS, *_ARROW_ERRORS, MemoryError) as exc:
        raise _unreadable(path, "a pickled pandas DataFrame", exc) from None
    if _frame_kind(frame) is None:
        raise DataError(
            f"{path}: the pickle holds a {type(frame).__name__}, not a DataFrame; "
            "pickle a pandas DataFrame with the event columns"
        )
    return _from_frame(frame, keys, str(path))


def _from_frame(frame: Any, keys: tuple[str, ...], origin: str) -> pa.Table:
    """Convert the key columns of a pandas or polars DataFrame to a pyarrow Table."""
    found = list(frame.columns)
    _check_columns(found, keys, origin)
    errors: tuple[type[BaseException], ...] = (*_ARROW_ERRORS, KeyError)
    try:
        if _frame_kind(frame) == "polars":
            import polars as pl

            errors = (*errors, pl.exceptions.PolarsError)
            return frame.select(list(keys)).to_arrow()
        return pa.Table.from_pandas(frame.loc[:, list(keys)], preserve_index=False)
    except errors as exc:
        raise DataError(
            f"{origin}: columns cannot be converted ({_one_line(exc)}); give the id columns a "
            "single type (all integers or all strings) and a numeric time column"
        ) from None


def _table_to_events(
    table: pa.Table, keys: tuple[str, ...], origin: str, parse_ids: bool
) -> Events:
    """Validate the three key columns and turn them into an Events."""
    if table.num_rows == 0:
        raise DataError(f"{origin}: has no events (only a header / zero rows); add event rows")
    session_key, item_key, time_key = keys[:3]
    named = [(session_key, "session id"), (item_key, "item id"), (time_key, "time")]
    if len(keys) > 3:
        named.append((keys[3], "user id"))
    for key, what in named:
        nulls = table.column(key).null_count
        if nulls:
            raise DataError(
                f"{origin}: {nulls} event(s) have a missing {what} (column {key!r}); "
                "remove or fill those rows"
            )
    ids = {key: _id_array(table.column(key), parse_ids, origin, key, what)
           for key, what in named if what != "time"}
    return Events(
        session=ids[session_key],
        item=ids[item_key],
        time=_time_array(table.column(time_key), origin, time_key),
        user=ids[keys[3]] if len(keys) > 3 else None,
    )


def _decode(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Undo dictionary encoding and string views so that the plain type remains."""
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if pa.types.is_string_view(col.type):
        col = pc.cast(col, pa.large_string())
    return col


def _numpy(col: pa.ChunkedArray) -> np.ndarray:
    """An Arrow column as a NumPy array (pyarrow has no type information: this gives one)."""
    out: np.ndarray = col.to_numpy()
    return out


def _id_array(col: pa.ChunkedArray, parse_ints: bool, origin: str, key: str,
              what: str) -> np.ndarray:
    """Ids as NumPy: integers as int64, strings as object ``str`` (canonical ints parsed),
    whole floats as int64.

    Raises:
        DataError: a float id that is NaN, infinite or fractional (``what`` names the column:
            "session id", "item id" or "user id").
    """
    col = _decode(col)
    if pa.types.is_floating(col.type):
        return _whole_float_ids(_numpy(pc.cast(col, pa.float64())), origin, key, what)
    if col.type in _TEXT_TYPES:
        if parse_ints and pc.all(pc.match_substring_regex(col, CANONICAL_INT_REGEX)).as_py():
            try:
                return _numpy(pc.cast(col, pa.int64()))
            except pa.ArrowInvalid:  # does not fit int64: keep the strings
                pass
        return _numpy(col)
    if pa.types.is_integer(col.type):
        try:
            return _numpy(pc.cast(col, pa.int64()))
        except pa.ArrowInvalid:  # uint64 beyond int64: keep the native dtype
            pass
    return _numpy(col)


def _whole_float_ids(values: np.ndarray, origin: str, key: str, what: str) -> np.ndarray:
    """Float ids as int64 when every one is a whole number (pandas stores integer ids as
    floats once a column had a gap), else DataError showing a bad one."""
    bad = ~np.isfinite(values)
    problem = "NaN or infinite"
    if not bad.any():
        bad = (values != np.round(values)) | (np.abs(values) >= 2.0**63)
        problem = "fractional or out-of-range"
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{origin}: {what} column {key!r} has {int(bad.sum())} {problem} value(s), e.g. "
            f"{float(values[first])!r} at row {first}; ids must be integers or strings: fix "
            "those rows or convert the column"
        )
    return values.astype(np.int64)


def _time_array(col: pa.ChunkedArray, origin: str, key: str) -> np.ndarray:
    """Times as finite float64; numeric strings parsed, timestamps as epoch seconds."""
    col = _decode(col)
    if pa.types.is_date(col.type):
        col = pc.cast(col, pa.timestamp("ms"))
    kind = col.type
    if pa.types.is_timestamp(kind):
        out = _numpy(pc.cast(col, pa.int64())).astype(np.float64) / _TIME_UNITS[kind.unit]
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        out = _numpy(pc.cast(col, pa.float64()))
    elif col.type in _TEXT_TYPES:
        out = _parse_float_strings(col, origin, key)
    else:
        raise DataError(
            f"{origin}: time column {key!r} has type {kind}; it must hold numbers or timestamps"
        )
    _check_finite(out, origin, key)
    return out


def _parse_float_strings(col: pa.ChunkedArray, origin: str, key: str) -> np.ndarray:
    """Parse a string column as float64 or raise DataError showing a bad value."""
    col = pc.utf8_trim_whitespace(col)
    try:
        return _numpy(pc.cast(col, pa.float64()))
    except pa.ArrowInvalid as exc:
        ok = pc.match_substring_regex(col, _FLOAT_RE, ignore_case=True)
        bad = pc.filter(col, pc.invert(ok))
        example = bad[0].as_py()[:60] if len(bad) else _one_line(exc, 100)
        raise DataError(
            f"{origin}: time column {key!r} has {max(len(bad), 1)} non-numeric value(s), "
            f"e.g. {example!r}; times must be numbers (e.g. Unix seconds)"
        ) from None


def _check_finite(time: np.ndarray, origin: str, key: str) -> None:
    """Raise DataError when any time is NaN or infinite."""
    finite = np.isfinite(time)
    if not finite.all():
        first = int(np.argmin(finite))
        raise DataError(
            f"{origin}: time column {key!r} has {int((~finite).sum())} NaN or infinite "
            f"value(s), e.g. {float(time[first])!r} at row {first}; remove or fix those rows"
        )


def _validate_events(events: Events) -> None:
    """Check that an Events holds three aligned, non-empty 1-D arrays with finite times."""
    arrays = {"session": events.session, "item": events.item, "time": events.time}
    if events.user is not None:
        arrays["user"] = events.user
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray) or arr.ndim != 1:
            raise DataError(f"Events: {name} must be a 1-D numpy array; convert it with np.asarray")
    lengths = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise DataError(f"Events: arrays have different lengths ({shown}); align them")
    if lengths["time"] == 0:
        raise DataError("Events: has no events (zero rows); add event rows")
    if events.time.dtype != np.float64:
        raise DataError(
            f"Events: time has dtype {events.time.dtype}, not float64; "
            "convert it with .astype(np.float64)"
        )
    _check_finite(events.time, "Events", "time")
