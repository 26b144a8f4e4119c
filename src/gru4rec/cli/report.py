"""``gru4rec report``: several runs (folders written by ``gru4rec run --report``) side by
side: the config values that differ and every metric, as a table, Markdown, CSV or JSON,
and a comparison plot."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

from gru4rec.cli.arguments import Subparsers

__all__ = ["add_parser", "execute"]

_EXAMPLES = """\
examples:
  gru4rec run train.tsv -t test.tsv -pf configs/rsc15_xe.py --report runs/xe
  gru4rec run train.tsv -t test.tsv -pf configs/rsc15_bprmax.py --report runs/bprmax
  gru4rec report runs/xe runs/bprmax --format markdown --plot runs/compare.png
"""


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``subparsers`` and return its parser."""
    p = subparsers.add_parser(
        "report", help="compare the reports of several runs",
        description="Print the runs written by 'gru4rec run --report DIR' side by side: the\n"
                    "config values that differ between them, every metric of every test\n"
                    "set, and the training time.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", metavar="RUN_DIR", nargs="+",
                   help="Run folders (or their metrics.json files).")
    p.add_argument("--format", choices=("table", "markdown", "csv", "json"), default="table",
                   help="How to print the comparison. (Default: table)")
    p.add_argument("--plot", metavar="PATH",
                   help="Write a bar plot of Recall@k and MRR@k at the largest k of each "
                        "run's first test set (.png/.svg/.pdf; needs the plot extra).")
    return p


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.1f}"
    return "" if value is None else str(value)


def _text(header: list[str], rows: list[list[Any]], markdown: bool) -> str:
    cells = [header, *([_cell(v) for v in row] for row in rows)]
    if markdown:
        cells.insert(1, ["---"] * len(header))
        return "\n".join("| " + " | ".join(row) + " |" for row in cells)
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                     for row in cells)


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().rstrip("\n")


def _plot(reports: dict[str, dict[str, Any]], path: str) -> None:
    from gru4rec.comparison import Comparison, ComparisonRow

    rows, cutoffs = [], None
    for run, r in reports.items():
        first = r["results"][0]
        cutoffs = cutoffs or tuple(first["cutoffs"])
        rows.append(ComparisonRow(run, r["model"], r["config"], first["metrics"], 0,
                                  r["times"]["train_seconds"], first["seconds"]))
    k = max(cutoffs or (20,))
    missing = [row.label for row in rows if f"Recall@{k}" not in row.metrics]
    if missing:
        from gru4rec.errors import DataError

        raise DataError(f"--plot compares Recall@{k} and MRR@{k}, which "
                        f"{', '.join(missing)} did not measure")
    Comparison(rows, (k,), reports[next(iter(reports))]["results"][0]["mode"]).plot(path)


def execute(args: argparse.Namespace) -> int:
    """Run the subcommand; library errors propagate to ``main`` (exit code 2)."""
    from gru4rec.errors import ConfigError
    from gru4rec.reports import read_report, report_table

    if args.plot is not None and Path(args.plot).suffix.lower() not in (".png", ".svg",
                                                                       ".pdf"):
        raise ConfigError(f"--plot {args.plot}: give a .png, .svg or .pdf file")
    reports = {}
    for run in args.runs:
        name = Path(run).name if Path(run).is_dir() else Path(run).parent.name
        while name in reports:  # two folders of the same name: keep both
            name += "'"
        reports[name] = read_report(run)
    header, rows = report_table(reports)
    if args.format == "json":
        print(json.dumps([dict(zip(header, row, strict=True)) for row in rows], indent=1))
    elif args.format == "csv":
        print(_csv(header, rows))
    else:
        print(_text(header, rows, markdown=args.format == "markdown"))
    if args.plot is not None:
        _plot(reports, args.plot)
        print(f"Wrote {args.plot}")
    return 0
