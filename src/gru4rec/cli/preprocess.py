"""``gru4rec preprocess``: turn a public dataset's raw click log into train/test splits.

Writes ``train_full``, ``test``, ``train_tr`` and ``train_valid`` (``.tsv`` or ``.parquet``)
into the output folder, all at once at the end (a failure leaves the folder as it was),
prints one progress line per step on stderr and the statistics of each split on stdout. On a
terminal, a transient step counter (tqdm) shows the work in progress between those lines.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gru4rec.cli.arguments import Subparsers

__all__ = ["add_parser", "execute"]

_EXAMPLES = """\
datasets (raw files; see the README for where to download them):
  rsc15         yoochoose-clicks.dat               (GRU4Rec paper: last day = test)
  yoochoose     yoochoose-clicks.dat yoochoose-test.dat
  rees46        2019-Oct.csv 2019-Nov.csv
  coveo         browsing_train.csv
  retailrocket  events.csv
  diginetica    train-item-views.csv
  generic       your own .csv/.tsv/.parquet log (options below)

examples:
  gru4rec preprocess rsc15 yoochoose-clicks.dat -o data/rsc15
  gru4rec preprocess rees46 2019-Oct.csv 2019-Nov.csv -o data/rees46 --format parquet
  gru4rec preprocess generic log.csv -o data/mine --user-col user --time-col ts \\
      --time-format "%Y-%m-%d %H:%M:%S" --event-filter type=view --test-days 7
"""

# CLI flag -> option name of the generic recipe
_GENERIC = {"--session-col": "session_col", "--user-col": "user_col", "--item-col": "item_col",
            "--time-col": "time_col", "--time-unit": "time_unit", "--time-format": "time_format",
            "--session-gap": "session_gap", "--event-filter": "event_filter",
            "--min-item-support": "min_item_support",
            "--min-session-length": "min_session_length", "--no-dedup": "dedup",
            "--test-days": "test_days", "--test-fraction": "test_fraction",
            "--separator": "separator", "--split-by-time": "split_by_time"}


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``preprocess`` subcommand to ``subparsers`` and return its parser."""
    from gru4rec.data.datasets import DATASETS

    p = subparsers.add_parser(
        "preprocess", help="make train/test splits of a public dataset, as in the papers",
        description="Preprocess a raw click log into train_full / test / train_tr / "
                    "train_valid,\nfollowing the dataset's published protocol.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATASET", choices=DATASETS,
                   help=f"The recipe: {', '.join(DATASETS)}.")
    p.add_argument("raw", metavar="RAW_PATH", nargs="+", help="The raw file(s) of the dataset.")
    p.add_argument("-o", "--outdir", metavar="OUTDIR", required=True,
                   help="Folder for the four split files (created if missing; its parent "
                        "must exist). Existing split files in it are replaced.")
    p.add_argument("--keep-user", action="store_true",
                   help="Write the user column (UserId) into the outputs, for sequence-aware "
                        "training (gru4rec run -uk UserId). Recipes with users: rees46, "
                        "retailrocket, coveo, and generic with --user-col.")
    p.add_argument("--format", dest="fmt", choices=("tsv", "parquet"), default="tsv",
                   help="tsv: tab separated with a SessionId/ItemId/Time header; parquet: the "
                        "same three columns. (Default: tsv)")
    _add_generic_args(p.add_argument_group(
        "generic recipe options (only with DATASET generic; the protocol is the RecSys 2023 "
        "one: consecutive repeats removed, sessions and items filtered until stable, test = "
        "sessions starting in the last days)"))
    return p


def _add_generic_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--session-col", metavar="COL",
                   help="Column of session ids. (Default: SessionId, unless --user-col)")
    g.add_argument("--user-col", metavar="COL",
                   help="Column of user ids: sessions are derived from it, cut where the gap "
                        "between a user's events exceeds --session-gap. (Default: not used)")
    g.add_argument("--item-col", metavar="COL", help="Column of item ids. (Default: ItemId)")
    g.add_argument("--time-col", metavar="COL", help="Column of times. (Default: Time)")
    g.add_argument("--time-unit", choices=("s", "ms"),
                   help="Unit of numeric times. (Default: s)")
    g.add_argument("--time-format", metavar="FMT",
                   help="strftime format of text times, e.g. '%%Y-%%m-%%d %%H:%%M:%%S' (UTC "
                        "unless it has %%z); written as epoch seconds. (Default: numeric times)")
    g.add_argument("--session-gap", type=float, metavar="SECONDS",
                   help="With --user-col: a gap strictly longer than this starts a new "
                        "session. (Default: 3600)")
    g.add_argument("--event-filter", action="append", metavar="COL=VALUE",
                   help="Keep only rows whose COL equals VALUE (as text); repeat for several "
                        "conditions. (Default: keep all rows)")
    g.add_argument("--min-item-support", type=int, metavar="N",
                   help="Drop items with fewer than N events. (Default: 5)")
    g.add_argument("--min-session-length", type=int, metavar="N",
                   help="Drop sessions with fewer than N events. (Default: 2)")
    g.add_argument("--no-dedup", dest="dedup", action="store_const", const=False,
                   help="Keep consecutive repeats of an item in a session. (Default: removed)")
    g.add_argument("--test-days", type=float, metavar="DAYS",
                   help="Test = sessions starting in the last DAYS days; the validation split "
                        "uses the DAYS before. (Default: 1)")
    g.add_argument("--test-fraction", type=float, metavar="F",
                   help="Instead of --test-days: test = the latest F of the sessions (by "
                        "first event), validation likewise inside train_full.")
    g.add_argument("--split-by-time", action="store_const", const=True,
                   help="Split at the cut by event time: every event before it is training, "
                        "every later one test (a session spanning the cut is cut in two). "
                        "(Default: by session start)")
    g.add_argument("--separator", metavar="SEP",
                   help="Field separator of text files. (Default: by extension: tab for "
                        ".tsv/.txt, comma otherwise)")


def _generic_options(args: argparse.Namespace) -> dict[str, Any]:
    """The generic options given on the command line (ConfigError for other datasets)."""
    from gru4rec.errors import ConfigError

    given = {flag: getattr(args, name) for flag, name in _GENERIC.items()
             if getattr(args, name) is not None}
    if given and args.dataset != "generic":
        raise ConfigError(f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to "
                          f"the generic recipe; the {args.dataset} recipe follows its paper's "
                          "protocol (use DATASET generic for a custom one)")
    return {_GENERIC[flag]: value for flag, value in given.items()}


def execute(args: argparse.Namespace) -> int:
    """Run the subcommand; library errors propagate to ``main`` (exit code 2)."""
    from pathlib import Path

    from gru4rec.cli.progress import progress_bar
    from gru4rec.data.datasets import SPLITS, get_recipe, preprocess
    from gru4rec.data.datasets._raw import require_polars

    options = _generic_options(args)
    if args.keep_user:
        options["keep_user"] = True
    require_polars()
    recipe = get_recipe(args.dataset)
    # On a terminal, a transient step counter below the step lines shows what runs (first the
    # long read of the raw files); on files and pipes stderr gets only the step lines (and, on
    # failure, the single error line). A recipe's number of steps is not known in advance.
    bar = progress_bar(desc=recipe.name, unit="step",
                       bar_format="{desc}: {n_fmt} step(s) done in {elapsed}{postfix}")
    bar.set_postfix_str(f"reading {' '.join(Path(p).name for p in args.raw)} ...")

    def progress(step: Any, seconds: float) -> None:
        bar.clear()
        sys.stderr.write(f"[{seconds:7.1f}s] {step.line()}\n")
        sys.stderr.flush()
        bar.set_postfix_str("working ...", refresh=False)
        bar.update(1)
        bar.refresh()

    try:
        report = preprocess(args.dataset, args.raw, args.outdir, args.fmt, on_step=progress,
                            **options)
    finally:
        bar.close()
    sys.stderr.write(f"[{report.seconds:7.1f}s] wrote {len(report.files)} files\n")
    print(f"{recipe.name}: wrote {', '.join(p.name for p in report.files.values())} to "
          f"{args.outdir} in {report.seconds:.1f}s", flush=True)
    for name in SPLITS:
        for line in report.splits[name].lines(name):
            print(line)
    return 0
