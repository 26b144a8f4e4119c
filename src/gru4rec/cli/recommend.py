"""``gru4rec recommend``: top-k next items for one session or for a file of sessions.

Item ids given as text follow :func:`gru4rec.inference.coerce_ids` (for a model trained on
integer ids, ``"42"`` means the item 42). Entries scored ``-inf`` (``--exclude-seen`` left
fewer than k items) are not recommendations and are left out of every output.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from gru4rec.cli.arguments import Subparsers, add_model_argument, positive_int

if TYPE_CHECKING:  # pragma: no cover
    from gru4rec.model import GRU4Rec

__all__ = ["add_parser", "execute"]

_CHUNK = 512  # sessions scored at once: bounds the (sessions, n_items) score matrix
_EXAMPLES = """\
examples:
  gru4rec recommend model.pt --session 214536502,214536506 -k 10 --exclude-seen
  gru4rec recommend model.pt --input sessions.tsv --output recs.tsv -k 20
  gru4rec recommend model.pt --input sessions.jsonl --output recs.jsonl --candidates items.txt
"""


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``recommend`` subcommand to ``subparsers`` and return its parser."""
    p = subparsers.add_parser(
        "recommend", help="top-k next items for a session (or a file of sessions)",
        description="Load a saved model and print the top-k next items (rank, item id, "
                    "score) for the given session(s).",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--session", metavar="ID1,ID2,...",
                     help="The session's item ids, oldest first, separated by commas.")
    src.add_argument("--input", metavar="FILE",
                     help="Sessions: a .tsv/.txt/.csv/.parquet events file (SessionId, ItemId "
                          "and optionally Time columns), a .jsonl file with one JSON list of "
                          "item ids per line (session id = line number, from 1), or a .json "
                          "array of such lists (session id = position, from 1).")
    p.add_argument("-k", type=positive_int, default=20, help="List length. (Default: 20)")
    p.add_argument("--exclude-seen", action="store_true",
                   help="Never recommend an item already in the session.")
    p.add_argument("--candidates", metavar="FILE",
                   help="Recommend only these items: a text file with one item id per line.")
    p.add_argument("--output", metavar="FILE",
                   help="Write to FILE instead of stdout: .tsv (SessionId, Rank, ItemId, "
                        "Score), .jsonl (one object per session) or .json (one array).")
    p.add_argument("-d", "--device", default="cpu", help="cpu, cuda or cuda:N (default cpu).")
    return p


def _read_candidates(path: str) -> list[str]:
    from gru4rec.errors import DataError

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the candidates file {path}: {exc}") from None
    ids = [line.strip() for line in lines if line.strip()]
    if not ids:
        raise DataError(f"the candidates file {path} holds no item id; write one per line")
    return ids


def _read_jsonl(path: Path) -> tuple[list[Any], list[list[Any]]]:
    from gru4rec.errors import DataError

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    sids, sessions = [], []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {no}: not valid JSON ({exc.msg})") from None
        if not _is_id_list(value):
            raise DataError(f"{path}, line {no}: expected a JSON list of item ids (ints or "
                            'strings), e.g. [12, 7, 31] or ["a", "b"]')
        sids.append(no)
        sessions.append(value)
    if not sessions:
        raise DataError(f"{path} holds no session; write one JSON list of item ids per line")
    return sids, sessions


def _read_json(path: Path) -> tuple[list[Any], list[list[Any]]]:
    """A .json file: one array of sessions (lists of item ids); session id = position + 1."""
    from gru4rec.errors import DataError

    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path} as JSON: {exc}") from None
    if not isinstance(value, list) or not value or not all(_is_id_list(v) for v in value):
        raise DataError(f"{path}: expected a JSON array of item-id lists, e.g. [[12, 7], [31]]")
    return list(range(1, len(value) + 1)), value


def _is_id_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int | str) and not isinstance(v, bool) for v in value)


def _read_events_file(path: Path) -> tuple[list[Any], list[list[Any]]]:
    """Sessions of an events file, in order of first appearance, events by time (file order
    for ties or without a Time column)."""
    import numpy as np

    from gru4rec.data.io import read_events

    if _has_time(path):
        ev = read_events(path)
        session, item, time = ev.session, ev.item, ev.time
    else:
        session, item = _read_two_columns(path)
        time = np.zeros(len(item))  # no Time column: file order
    _, first, codes = np.unique(session, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))[codes]  # session rank by first appearance
    order = np.lexsort((time, rank))  # stable: ties keep file order
    starts = np.flatnonzero(np.diff(rank[order], prepend=-1))
    items = item[order].tolist()
    bounds = list(starts) + [len(order)]
    sessions = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return session[order][starts].tolist(), sessions


def _read_two_columns(path: Path) -> tuple[Any, Any]:
    """SessionId and ItemId of a delimited text file without Time, as strings."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from gru4rec.data.events import is_canonical_int
    from gru4rec.errors import DataError

    sep = "," if path.suffix.lower() == ".csv" else "\t"
    keys = ["SessionId", "ItemId"]
    try:
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=sep),
                               convert_options=pacsv.ConvertOptions(
                                   include_columns=keys,
                                   column_types={k: pa.string() for k in keys}))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot be read as a file with SessionId and ItemId columns "
                        f"({' '.join(str(exc).split())[:200]})") from None
    if table.num_rows == 0 or table.column("ItemId").null_count:
        raise DataError(f"{path}: has no events, or rows without an ItemId")
    sessions = table.column("SessionId").to_pylist()
    if all(s is not None and is_canonical_int(s) for s in sessions):
        sessions = [int(s) for s in sessions]  # as read_events does: integer ids stay ints
    return (np.asarray(sessions, dtype=object),
            np.asarray(table.column("ItemId").to_pylist(), dtype=object))


def _has_time(path: Path) -> bool:
    """Whether a delimited text file's header names a Time column (other formats: yes)."""
    sep = {".tsv": "\t", ".txt": "\t", ".csv": ","}.get(path.suffix.lower())
    if sep is None or not path.is_file():
        return True
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline().rstrip("\r\n").split(sep)
    return "Time" in [h.strip().strip('"') for h in header]


def _read_sessions(args: argparse.Namespace) -> tuple[list[Any], list[list[Any]]]:
    from gru4rec.errors import DataError

    if args.session is not None:
        ids = [s.strip() for s in args.session.split(",") if s.strip()]
        if not ids:
            raise DataError("--session needs at least one item id, e.g. --session 12,7,31")
        return ["session"], [ids]
    path = Path(args.input)
    if not path.is_file():
        raise DataError(f"{path}: file does not exist; check the path")
    if path.suffix.lower() == ".jsonl":
        return _read_jsonl(path)
    if path.suffix.lower() == ".json":
        return _read_json(path)
    return _read_events_file(path)


def _writer(path: str | None) -> str:
    from gru4rec.errors import DataError

    if path is None:
        return "text"
    kind = {".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "json"}.get(
        Path(path).suffix.lower())
    if kind is None:
        raise DataError(f"--output {path}: unsupported extension; use .tsv, .jsonl or .json")
    if not Path(path).parent.is_dir():
        raise DataError(f"--output {path}: folder {Path(path).parent} does not exist")
    return kind


def _rows(model: GRU4Rec, args: argparse.Namespace, sessions: list[list[Any]],
          candidates: list[str] | None,
          progress: Callable[[int, int], None] | None = None,
          ) -> Iterator[tuple[int, list[Any], list[float]]]:
    """Yield (session index, item ids, scores) per session, -inf entries left out;
    ``progress(sessions scored, sessions)`` after every chunk is scored."""
    from gru4rec.inference import coerce_ids

    index = model.item_index_
    cand = coerce_ids(index, candidates) if candidates is not None else None
    for start in range(0, len(sessions), _CHUNK):
        chunk = [coerce_ids(index, s) for s in sessions[start:start + _CHUNK]]
        items, scores = model.recommend(chunk, k=args.k, exclude_seen=args.exclude_seen,
                                        candidates=cand)
        if progress is not None:
            progress(start + len(chunk), len(sessions))
        for row in range(len(chunk)):
            keep = scores[row] > float("-inf")
            yield start + row, items[row][keep].tolist(), scores[row][keep].tolist()


def _write(out: TextIO, kind: str, sids: list[Any],
           rows: Iterable[tuple[int, list[Any], list[float]]]) -> None:
    if kind == "text" and len(sids) == 1:
        out.write("Rank\tItemId\tScore\n")
    elif kind in ("text", "tsv"):
        out.write("SessionId\tRank\tItemId\tScore\n")
    first = True
    for s, items, scores in rows:
        if kind in ("text", "tsv"):
            lead = "" if kind == "text" and len(sids) == 1 else f"{sids[s]}\t"
            for rank, (item, score) in enumerate(zip(items, scores, strict=True), 1):
                out.write(f"{lead}{rank}\t{item}\t{score:.6f}\n")
            continue
        obj = json.dumps({"session_id": sids[s], "items": items, "scores": scores})
        out.write(obj + "\n" if kind == "jsonl" else ("[" if first else ",\n") + obj)
        first = False
    if kind == "json":
        out.write("[]\n" if first else "]\n")


def execute(args: argparse.Namespace) -> int:
    """Run ``gru4rec recommend``; returns the exit code."""
    import sys

    from gru4rec.cli.progress import StepProgress, is_terminal
    from gru4rec.model import GRU4Rec

    kind = _writer(args.output)
    model = GRU4Rec.load(args.model, device=args.device)
    candidates = _read_candidates(args.candidates) if args.candidates else None
    sids, sessions = _read_sessions(args)
    # a file of sessions gets a bar on a terminal, unless the lists themselves go there
    shown = args.input is not None and (args.output is not None or not is_terminal(sys.stdout))
    with StepProgress("Recommending", unit="session", enabled=shown) as bar:
        rows = _rows(model, args, sessions, candidates, bar)
        if args.output is None:
            _write(sys.stdout, kind, sids, rows)
            return 0
        with open(args.output, "w", encoding="utf-8") as fh:
            _write(fh, kind, sids, rows)
    print(f"wrote recommendations for {len(sessions)} session(s) to {args.output}",
          file=sys.stderr)
    return 0
