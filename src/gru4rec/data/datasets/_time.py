"""Vectorised parsing of the raw files' fixed-layout timestamps into epoch integers (UTC).

The fast parsers cut the digits out at fixed positions and compute the epoch with integer
arithmetic (days from the civil date), which is several times faster than a general
``strptime`` on tens of millions of rows. A value of the wrong length or with out-of-range
fields becomes null; the ``*_text`` variants (``strptime`` with the documented format) are the
strict fallback used when the fast parser produced nulls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["date_days", "date_days_text", "iso_ms", "iso_ms_text", "utc_seconds",
           "utc_seconds_text"]

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"  # 2014-04-07T10:51:09.277Z
UTC_FORMAT = "%Y-%m-%d %H:%M:%S UTC"  # 2019-10-01 00:00:00 UTC
DATE_FORMAT = "%Y-%m-%d"  # 2016-05-09


def _digits(expr: pl.Expr, start: int, length: int) -> pl.Expr:
    import polars as pl

    return expr.str.slice(start, length).cast(pl.Int64, strict=False)


def _days(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    """Days since 1970-01-01 of the proleptic Gregorian date (y, m, d)."""
    import polars as pl

    y = y - (m <= 2).cast(pl.Int64)  # years start in March: February is the last month
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468


def _checked(value: pl.Expr, text: pl.Expr, length: int, parts: dict[str, pl.Expr]) -> pl.Expr:
    import polars as pl

    ok = (text.str.len_bytes() == length) & parts["m"].is_between(1, 12) \
        & parts["d"].is_between(1, 31)
    for name, top in (("H", 23), ("M", 59), ("S", 59)):
        if name in parts:
            ok = ok & parts[name].is_between(0, top)
    return pl.when(ok).then(value)


def date_days(expr: pl.Expr) -> pl.Expr:
    """``2016-05-09`` -> days since the epoch (Int64)."""
    parts = {"y": _digits(expr, 0, 4), "m": _digits(expr, 5, 2), "d": _digits(expr, 8, 2)}
    return _checked(_days(parts["y"], parts["m"], parts["d"]), expr, 10, parts)


def _clock(expr: pl.Expr) -> dict[str, pl.Expr]:
    return {"y": _digits(expr, 0, 4), "m": _digits(expr, 5, 2), "d": _digits(expr, 8, 2),
            "H": _digits(expr, 11, 2), "M": _digits(expr, 14, 2), "S": _digits(expr, 17, 2)}


def _seconds(p: dict[str, pl.Expr]) -> pl.Expr:
    return _days(p["y"], p["m"], p["d"]) * 86_400 + p["H"] * 3_600 + p["M"] * 60 + p["S"]


def utc_seconds(expr: pl.Expr) -> pl.Expr:
    """``2019-10-01 00:00:00 UTC`` -> epoch seconds (Int64)."""
    parts = _clock(expr)
    return _checked(_seconds(parts), expr, 23, parts)


def iso_ms(expr: pl.Expr) -> pl.Expr:
    """``2014-04-07T10:51:09.277Z`` (exactly three fraction digits) -> epoch ms (Int64)."""
    parts = _clock(expr)
    value = _seconds(parts) * 1000 + _digits(expr, 20, 3)
    return _checked(value, expr, 24, parts)


def _strptime(expr: pl.Expr, fmt: str, unit: Literal["s", "ms"]) -> pl.Expr:
    import polars as pl

    return expr.str.to_datetime(fmt, time_unit="ms", strict=False).dt.epoch(unit).cast(pl.Int64)


def iso_ms_text(expr: pl.Expr) -> pl.Expr:
    """Strict :func:`iso_ms` for any number of fraction digits (``strptime``)."""
    return _strptime(expr, ISO_FORMAT, "ms")


def utc_seconds_text(expr: pl.Expr) -> pl.Expr:
    """Strict :func:`utc_seconds` (``strptime``)."""
    return _strptime(expr, UTC_FORMAT, "s")


def date_days_text(expr: pl.Expr) -> pl.Expr:
    """Strict :func:`date_days` (``strptime``)."""
    import polars as pl

    return expr.str.to_date(DATE_FORMAT, strict=False).cast(pl.Int64)
