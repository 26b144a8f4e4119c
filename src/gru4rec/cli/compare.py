"""``gru4rec compare``: train GRU4Rec and baselines on the same data, evaluate all on the
same predictions, and print a table (plus JSON and a bar plot on request)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gru4rec.cli.arguments import Subparsers, add_column_arguments, positive_int
from gru4rec.cli.models import MODEL_NAMES
from gru4rec.cli.run import EVAL_TYPES

__all__ = ["add_parser", "execute"]

_EXAMPLES = """\
examples:
  GRU4Rec against the session-rec baselines (their rsc15-100k settings), pessimistic ties:
    gru4rec compare train.tsv test.tsv --models gru4rec:configs/rsc15_xe_logq_shared.py \\
        configs/baselines/vsknn_rsc15_100k.py configs/baselines/sr_rsc15_100k.py pop spop
  a baseline with a parameter string, written to JSON and a bar plot:
    gru4rec compare train.tsv test.tsv --models "vsknn:k=100,sample_size=500" sr \\
        --json result.json --plot result.png
  each model tuned first (20 grid points / trials) on the newest 10% of train:
    gru4rec compare train.tsv test.tsv --models sr vsknn --tune 20
"""


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand to ``subparsers`` and return its parser."""
    p = subparsers.add_parser(
        "compare", help="compare GRU4Rec and baselines on one evaluator",
        description="Train each model on TRAIN, evaluate all of them on TEST with the same\n"
                    "evaluator (every next-item prediction, full ranking, one tie mode) and\n"
                    "print a table of Recall@k, MRR@k, training time and prediction speed.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", metavar="TRAIN", help="Training events (as for gru4rec run).")
    p.add_argument("test", metavar="TEST", help="Test events.")
    p.add_argument("--models", nargs="+", required=True, metavar="MODEL",
                   help=f"Models to compare: {', '.join(MODEL_NAMES)}; each as NAME, "
                        "NAME:PARAM_FILE (.py/.toml), NAME:a=1,b=2 (a parameter string), or "
                        "a PARAM_FILE that names its model (configs/baselines/*.py). A bare "
                        "gru4rec trains the default hyperparameters; give a preset, e.g. "
                        "gru4rec:configs/rsc15_xe_logq_shared.py.")
    p.add_argument("-m", "--measure", metavar="AT", nargs="+", type=positive_int,
                   default=[5, 10, 20], help="Cut-offs k of Recall@k and MRR@k. "
                                             "(Default: 5 10 20)")
    p.add_argument("-e", "--eval_type", choices=EVAL_TYPES, default="conservative",
                   metavar="EVAL_TYPE",
                   help="Tie mode: conservative counts an item scoring as high as the target "
                        "against it, which is what sparse baselines (most items score 0) "
                        "need to be measured fairly; standard, median, tiebreaking. "
                        "(Default: conservative)")
    p.add_argument("--tune", type=positive_int, metavar="N",
                   help="First tune each model on a validation split of TRAIN (sessions "
                        "starting in its last 10%% of time): N grid points for a baseline, "
                        "an Optuna study of N trials for GRU4Rec (needs --space and the "
                        "tune extra). (Default: no tuning)")
    p.add_argument("--tune_metric", choices=("mrr", "recall"), default="mrr",
                   help="What --tune maximises, at the largest cut-off. (Default: mrr)")
    p.add_argument("--space", metavar="PATH",
                   help="GRU4Rec's parameter space for --tune (as for gru4rec tune -opf).")
    p.add_argument("--json", metavar="PATH", help="Write the results to this JSON file.")
    p.add_argument("--plot", metavar="PATH",
                   help="Write a bar plot (.png/.svg/.pdf; needs the plot extra).")
    p.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    p.add_argument("-d", "--device", metavar="DEVICE",
                   help="GRU4Rec's device: cpu, cuda or cuda:N (baselines run on the CPU).")
    p.add_argument("--seed", type=int, default=42, help="Seed of every model. (Default: 42)")
    add_column_arguments(p)
    return p


def _say(text: str) -> None:
    print(text, flush=True)


def _check(args: argparse.Namespace) -> None:
    """Paths first, so a typo never costs a training run."""
    from gru4rec.errors import ConfigError, DataError

    for what, path in (("training", args.path), ("test", args.test)):
        if not Path(path).is_file():
            raise DataError(f"{what} file {path} does not exist")
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise ConfigError(f"{flag} {path}: folder {Path(path).parent} does not exist")
    if args.plot is not None:
        if Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
            raise ConfigError(f"--plot {args.plot}: give a .png, .svg or .pdf file")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ConfigError('--plot needs matplotlib: pip install "gru4rec[plot]"') from None


def execute(args: argparse.Namespace) -> int:
    """Run the subcommand; library errors propagate to ``main`` (exit code 2)."""
    from gru4rec.cli.models import parse_spec
    from gru4rec.comparison import ComparisonRow, compare

    _check(args)
    specs = [parse_spec(text) for text in args.models]

    def done(row: ComparisonRow) -> None:
        k = max(args.measure)
        _say(f"{row.label}: Recall@{k} {row.metrics[f'Recall@{k}']:.4f} MRR@{k} "
             f"{row.metrics[f'MRR@{k}']:.4f} (trained in {row.train_seconds:.1f}s, "
             f"{row.predictions_per_second:,.0f} predictions/s)")

    _say(f"Comparing {len(specs)} models on {args.test} ({args.eval_type} ties)")
    result = compare(args.path, args.test, specs, cutoffs=args.measure, mode=args.eval_type,
                     seed=args.seed, device=args.device, tune_trials=args.tune or 0,
                     tune_metric=args.tune_metric, space=args.space,
                     on_start=lambda spec: _say(f"Training {spec.shown}"
                                                + (" (tuning first)" if args.tune else "")),
                     on_result=done,
                     on_epoch=lambda epoch: _say(f"  {epoch.line()}"),
                     keys={"session_key": args.session_key, "item_key": args.item_key,
                           "time_key": args.time_key})
    _say("")
    _say(result.table(markdown=args.markdown))
    if args.json is not None:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1) + "\n")
        _say(f"Wrote {args.json}")
    if args.plot is not None:
        result.plot(args.plot)
        _say(f"Wrote {args.plot}")
    return 0
