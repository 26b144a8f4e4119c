"""Reading raw click logs: format descriptions, early checks of the first lines, checked scans.

Every problem becomes one :class:`~gru4rec.errors.DataError` whose message names the file,
the problem and the format the recipe expects (fields, separator, an example line). The
first lines of every file are checked in Python (cheap, precise messages: wrong separator,
missing column, a header where none belongs, a value of the wrong shape); the full file is
then read by polars, and a value that fails to parse further down is located by a second,
all-text scan that runs only when something went wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from gru4rec.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

    DType: TypeAlias = pl.DataType | type[pl.DataType]  # what a column is read as

__all__ = ["Field", "RawFormat", "check_files", "check_head", "read_all", "read_raw",
           "require_polars"]

POLARS_INSTALL = 'pip install "gru4rec[polars]"'
LINE = "__line"  # row-index column: the 1-based line number in the raw file
_HEAD_LINES = 20
_HEAD_BYTES = 1 << 16
_SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


def require_polars() -> None:
    """Raise DataError with the install line when polars is missing."""
    try:
        import polars  # noqa: F401
    except ImportError:
        raise DataError(f"preprocessing needs polars, which is not installed; install it with: "
                        f"{POLARS_INSTALL}") from None


@dataclass(frozen=True)
class RawFormat:
    """What a raw file of one dataset looks like.

    Args:
        name: the file's usual name (e.g. ``yoochoose-clicks.dat``).
        separator: the field separator.
        columns: the column names, in file order (header-less files: our names for them).
        header: whether the first line is a header naming the columns.
        example: one data line of the file.
        patterns: column -> regular expression its values must match (checked on the first
            lines only); columns not listed are not checked there.
        required: the columns the recipe reads (default: all of them).
        aliases: column -> other accepted spellings of its header name.
    """

    name: str
    separator: str
    columns: tuple[str, ...]
    header: bool
    example: str
    patterns: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def describe(self) -> str:
        """The expected format in one sentence (ends every error message)."""
        sep = _SEPARATORS.get(self.separator, repr(self.separator))
        head = "a header line" if self.header else "no header line"
        return (f"expected {self.name} format: {head}, {len(self.columns)} {sep}-separated "
                f"fields {self.separator.join(self.columns)}, e.g. {self.example!r}")

    def needed(self) -> tuple[str, ...]:
        return self.required or self.columns


@dataclass(frozen=True)
class Field:
    """How one raw column becomes one column of the parsed frame.

    Args:
        raw: raw column name. out: output column name.
        dtype: the name of the polars dtype the raw column is read as (fast path), e.g.
            ``Int64`` or ``String``.
        what: what a value must be, for messages (e.g. ``an integer``).
        fast: expression on the raw column (read as ``dtype``) giving the output; null
            where a value does not parse. Default: the column itself.
        text: the same from the column read as text (strict fallback and error locating);
            default: cast to ``dtype``.
    """

    raw: str
    out: str
    dtype: str
    what: str
    fast: Callable[[pl.Expr], pl.Expr] | None = None
    text: Callable[[pl.Expr], pl.Expr] | None = None


def _fail(fmt: RawFormat, path: Path, problem: str) -> DataError:
    return DataError(f"{path}: {problem}; {fmt.describe()}")


def check_files(paths: Sequence[str | Path], fmt: RawFormat, dataset: str,
                n_files: tuple[int, int | None], source: str) -> list[Path]:
    """Check the count, existence and size of the raw files; return them as paths."""
    lo, hi = n_files
    if len(paths) < lo or (hi is not None and len(paths) > hi):
        want = f"{lo}" if lo == hi else f"{lo} or more" if hi is None else f"{lo} to {hi}"
        raise DataError(f"{dataset} takes {want} raw file{'s' if hi != 1 else ''}, got "
                        f"{len(paths)}; {fmt.describe()}")
    result = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DataError(f"raw file {path} does not exist; download it from {source}")
        if not path.is_file():
            raise DataError(f"raw file {path} is not a file; give the path of {fmt.name}")
        if path.stat().st_size == 0:
            raise _fail(fmt, path, "the file is empty")
        result.append(path)
    return result


def _head(path: Path) -> list[str]:
    """The first complete lines of ``path`` (at most ~64 KiB)."""
    with open(path, "rb") as fh:
        chunk = fh.read(_HEAD_BYTES)
    lines = chunk.decode("utf-8", errors="replace").split("\n")
    if len(chunk) == _HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    return [line.rstrip("\r") for line in lines if line.strip()][:_HEAD_LINES + 1]


def _separator_problem(line: str, fmt: RawFormat, expected_fields: int) -> str | None:
    """Describe a wrong separator in ``line``, or None if it is not the problem."""
    if len(line.split(fmt.separator)) >= expected_fields:
        return None
    for sep, name in _SEPARATORS.items():
        if sep != fmt.separator and len(line.split(sep)) >= max(expected_fields, 2):
            want = _SEPARATORS.get(fmt.separator, repr(fmt.separator))
            return f"wrong separator: the fields are {name}-separated, expected {want}"
    return None


def _columns_of(path: Path, fmt: RawFormat, header: str) -> dict[str, str]:
    """Map each needed column to its name in the header (aliases resolved); raise on missing."""
    names = [name.strip().strip('"') for name in header.split(fmt.separator)]
    found, missing = {}, []
    for column in fmt.needed():
        spelling = next((s for s in (column, *fmt.aliases.get(column, ())) if s in names), None)
        if spelling is None:
            missing.append(column)
        else:
            found[column] = spelling
    if missing:
        problem = _separator_problem(header, fmt, len(fmt.columns))
        if problem is None:
            shown = header if len(header) <= 120 else header[:117] + "..."
            problem = (f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                       f"(the first line is {shown!r})")
        raise _fail(fmt, path, problem)
    return found


def _looks_like_header(line: str) -> bool:
    return not any(ch.isdigit() for ch in line)


def _check_line(path: Path, fmt: RawFormat, line: str, number: int,
                positions: dict[str, int], n_fields: int) -> None:
    values = line.split(fmt.separator)
    hint = ("; the first line looks like a header line, which this format does not have"
            if number == 1 and not fmt.header and _looks_like_header(line) else "")
    if len(values) != n_fields:
        problem = _separator_problem(line, fmt, n_fields)
        raise _fail(fmt, path, problem or f"line {number} has {len(values)} fields, expected "
                                          f"{n_fields} ({line[:120]!r}){hint}")
    for column, pattern in fmt.patterns.items():
        value = values[positions[column]].strip().strip('"') if column in positions else None
        if value is not None and not re.fullmatch(pattern, value):
            raise _fail(fmt, path, f"line {number}: {column} {value!r} is not in the expected "
                                   f"form{hint}")


def check_head(path: Path, fmt: RawFormat) -> dict[str, str]:
    """Check the first lines of ``path`` against ``fmt``; return column -> header spelling."""
    lines = _head(path)
    if not lines:
        raise _fail(fmt, path, "the file has no data lines")
    spelled = {c: c for c in fmt.columns}
    if fmt.header:
        spelled = _columns_of(path, fmt, lines[0])
        header = [n.strip().strip('"') for n in lines[0].split(fmt.separator)]
        positions = {c: header.index(s) for c, s in spelled.items()}
        data, first, n_fields = lines[1:], 2, len(header)
        if not data:
            raise _fail(fmt, path, "the file has a header line but no data lines")
    else:
        positions = {c: i for i, c in enumerate(fmt.columns)}
        data, first, n_fields = lines, 1, len(fmt.columns)
    for offset, line in enumerate(data[:_HEAD_LINES]):
        _check_line(path, fmt, line, first + offset, positions, n_fields)
    return spelled


def _scan(path: Path, fmt: RawFormat, spelled: dict[str, str], dtypes: dict[str, DType],
          lines: bool = False) -> pl.LazyFrame:
    """Lazy scan of the needed columns (renamed to the canonical names), with the line
    number column when ``lines`` (it costs time: only the error path asks for it)."""
    import polars as pl

    index = LINE if lines else None  # no row-index column unless asked for
    offset = (2 if fmt.header else 1) if lines else 0
    keep = [LINE] if lines else []
    if fmt.header:
        lf = pl.scan_csv(path, has_header=True, separator=fmt.separator, infer_schema=False,
                         schema_overrides={spelled[c]: t for c, t in dtypes.items()},
                         row_index_name=index, row_index_offset=offset)
        return lf.select(*keep, *(pl.col(spelled[c]).alias(c) for c in dtypes))
    lf = pl.scan_csv(path, has_header=False, separator=fmt.separator, infer_schema=False,
                     new_columns=list(fmt.columns), schema_overrides=dtypes,
                     row_index_name=index, row_index_offset=offset)
    return lf.select(*keep, *dtypes)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_raw(path: Path, fmt: RawFormat, fields: Sequence[Field],
             keep: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None) -> pl.DataFrame:
    """Read ``path`` into a frame of the fields' output columns.

    ``keep`` filters the scanned rows (e.g. view events only) before anything is parsed;
    the columns it uses must be fields with ``out`` equal to ``raw`` or appear in
    ``fmt.required``. Values that do not parse raise DataError naming the first such line.
    """
    import polars as pl

    spelled = check_head(path, fmt)
    extra = {c: pl.String for c in fmt.needed() if c not in {f.raw for f in fields}}
    dtypes: dict[str, DType] = {**{f.raw: getattr(pl, f.dtype) for f in fields}, **extra}
    lf = _scan(path, fmt, spelled, dtypes)
    lf = keep(lf) if keep else lf
    exprs = [(f.fast(pl.col(f.raw)) if f.fast else pl.col(f.raw)).alias(f.out) for f in fields]
    try:
        # The streaming engine reads, filters and parses the file in parallel chunks.
        frame = lf.select(exprs).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise _fail(fmt, path, f"cannot be parsed: {_first_line(exc)}") from None
    if frame.null_count().sum_horizontal().item() == 0:
        return frame
    return _read_as_text(path, fmt, fields, spelled, keep)


def _text_expr(f: Field) -> pl.Expr:
    import polars as pl

    source = pl.col(f.raw).str.strip_chars()
    if f.text is not None:
        return f.text(source).alias(f.out)
    return source.cast(getattr(pl, f.dtype), strict=False).alias(f.out)


def _read_as_text(path: Path, fmt: RawFormat, fields: Sequence[Field], spelled: dict[str, str],
                  keep: Callable[[pl.LazyFrame], pl.LazyFrame] | None) -> pl.DataFrame:
    """Slow path: every column as text, strict parsers; raise on the first unparsable value."""
    import polars as pl

    text: dict[str, DType] = {c: pl.String for c in fmt.needed()}
    lf = _scan(path, fmt, spelled, text, lines=True)
    lf = keep(lf) if keep else lf
    try:
        frame = lf.select(LINE, *(pl.col(f.raw).alias(f"raw:{f.out}") for f in fields),
                          *(_text_expr(f) for f in fields)).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise _fail(fmt, path, f"cannot be parsed: {_first_line(exc)}") from None
    for f in fields:
        bad = frame.filter(pl.col(f.out).is_null())
        if bad.height:
            line, value = bad.row(0)[0], bad[f"raw:{f.out}"][0]
            shown = "is empty" if value is None else f"{value!r} is not {f.what}"
            raise _fail(fmt, path, f"line {line}: {f.raw} {shown} ({bad.height:,} such "
                                   f"line{'s' if bad.height > 1 else ''})")
    return frame.select(f.out for f in fields)


def read_all(paths: Sequence[Path], fmt: RawFormat, fields: Sequence[Field],
             keep: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None) -> pl.DataFrame:
    """:func:`read_raw` every file and concatenate the frames (in the files' order)."""
    import polars as pl

    frames = [read_raw(path, fmt, fields, keep) for path in paths]
    return frames[0] if len(frames) == 1 else pl.concat(frames)
