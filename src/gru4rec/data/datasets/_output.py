"""Statistics of the splits and their atomic writing (TSV or Parquet) into the output folder.

The four files are written into a fresh temporary folder next to the output folder and moved
in only when all of them are complete: a failure leaves the output folder as it was (and
absent if it did not exist).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gru4rec.data.datasets._protocol import ITEM, SESSION, TIME, USER_OUT, number
from gru4rec.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["FORMATS", "SplitStats", "check_outdir", "split_stats", "write_splits"]

FORMATS = {"tsv": ".tsv", "parquet": ".parquet"}
_PER_SECOND = {"s": 1, "ms": 1000}


def _utc(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    moment = datetime.fromtimestamp(value / _PER_SECOND[unit], tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class SplitStats:
    """Size and time range of one split.

    ``time_first``/``time_last`` are in the split's own unit (``time_unit``: ``s`` or
    ``ms``); ``None`` (and zero lengths) for an empty split.
    """

    events: int
    sessions: int
    items: int
    time_first: float | None
    time_last: float | None
    time_unit: str
    length_min: int
    length_mean: float
    length_max: int

    @property
    def first_utc(self) -> str:
        return _utc(self.time_first, self.time_unit)

    @property
    def last_utc(self) -> str:
        return _utc(self.time_last, self.time_unit)

    def as_dict(self) -> dict[str, object]:
        """Plain values (JSON-ready), with the UTC date-times added."""
        return {**asdict(self), "first_utc": self.first_utc, "last_utc": self.last_utc}

    def lines(self, name: str) -> list[str]:
        """Two human-readable lines describing the split ``name``."""
        return [
            f"{name}: {self.events:,} events, {self.sessions:,} sessions, {self.items:,} items; "
            f"session length min/mean/max {self.length_min}/{self.length_mean:.2f}/"
            f"{self.length_max}",
            f"{' ' * len(name)}  time {self.time_first} .. {self.time_last} ({self.time_unit}) = "
            f"{self.first_utc} .. {self.last_utc}",
        ]


def split_stats(frame: pl.DataFrame, time_unit: str) -> SplitStats:
    """Statistics of ``frame`` (columns SessionId, ItemId, Time).

    Raises:
        ConfigError: ``time_unit`` is not ``s`` or ``ms``.
    """
    import polars as pl

    if time_unit not in _PER_SECOND:
        raise ConfigError(f"time_unit must be one of {', '.join(_PER_SECOND)}, got "
                          f"{time_unit!r}")
    if frame.height == 0:
        return SplitStats(0, 0, 0, None, None, time_unit, 0, 0.0, 0)
    lengths = frame.group_by(SESSION).len().get_column("len")
    row = frame.select(pl.col(ITEM).n_unique(), pl.col(TIME).min().alias("first"),
                       pl.col(TIME).max().alias("last")).row(0)
    return SplitStats(events=frame.height, sessions=lengths.len(), items=int(row[0]),
                      time_first=row[1], time_last=row[2], time_unit=time_unit,
                      length_min=int(number(lengths.min())),
                      length_mean=float(number(lengths.mean())),
                      length_max=int(number(lengths.max())))


def check_outdir(outdir: str | os.PathLike[str]) -> Path:
    """Fail early when ``outdir`` cannot become the output folder.

    Raises:
        DataError: ``outdir`` is an existing file, or its parent folder does not exist.
    """
    path = Path(outdir)
    if path.exists() and not path.is_dir():
        raise DataError(f"output folder {path} is an existing file; give a folder path")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise DataError(f"cannot create output folder {path}: folder {parent} does not exist; "
                        "create it first")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(frame: pl.DataFrame, target: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.write_parquet(target)
    else:
        frame.write_csv(target, separator="\t")  # floats are written in shortest round-trip form


def write_splits(splits: dict[str, pl.DataFrame], outdir: str | os.PathLike[str],
                 fmt: str = "tsv") -> dict[str, Path]:
    """Write each split to ``outdir/<name>.<fmt>`` atomically; return the final paths.

    Raises:
        DataError: an unknown ``fmt``, an unusable ``outdir`` (see :func:`check_outdir`), or
            a write that failed (nothing is left behind).
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")
    path = check_outdir(outdir)
    existed = path.is_dir()
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial",
                                dir=path.absolute().parent))
    names = {name: f"{name}{FORMATS[fmt]}" for name in splits}
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a folder gets the umask
        for name, frame in splits.items():
            columns = [SESSION, ITEM, TIME] + ([USER_OUT] if USER_OUT in frame.columns
                                               else [])
            _write(frame.select(columns), tmp / names[name], fmt)
        if existed:
            for filename in names.values():
                os.replace(tmp / filename, path / filename)
            tmp.rmdir()
        else:
            os.rename(tmp, path)  # the whole folder appears at once
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"cannot write the splits into {path}: {exc}; check the free space and "
                        "permissions there") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {name: path / filename for name, filename in names.items()}
