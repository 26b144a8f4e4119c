"""``gru4rec tune``: hyperparameter optimisation with Optuna (``pip install "gru4rec[tune]"``).

The flags of the original ``paropt.py`` (``-fp``, ``-opf``, ``-m``, ``-nt``, ``-fm``, ``-pm``,
``-e``, ``-d``, ``-ik/-sk/-tk``), with every trial trained in this process, a study stored in
a database (rerun the same command to continue it; start it on several machines with one
``--storage`` URL to share it) and pruning of hopeless trials. Writes to ``--output_dir``:
the study database (by default), ``best_params.py`` (for ``gru4rec run -pf``),
``trials.csv`` / ``trials.json`` and plots (with the plot extra).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gru4rec.cli.arguments import Subparsers, positive_int
from gru4rec.cli.run import EVAL_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from gru4rec.tuning import EpochDone, TrialDone, TrialProgress

__all__ = ["add_parser", "execute"]

_PRUNE_EARLY = "0.125,0.25,0.5"  # gru4rec.tuning.PRUNE_EARLY (not imported: it would load optuna)

_EXAMPLES = """\
examples:
  gru4rec tune train_tr.tsv train_valid.tsv -opf configs/spaces/gru4rec_bprmax_space.json \\
      -fp loss=bpr-max,constrained_embedding=True,n_epochs=10 -nt 100 -pm mrr -e conservative
  the same on several machines, sharing one study (run it once per worker):
  gru4rec tune train_tr.tsv train_valid.tsv -opf space.json -fp loss=bpr-max -nt 200 \\
      --storage postgresql://user:pw@db/optuna --study-name rsc15-bprmax
"""


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``tune`` subcommand to ``subparsers`` and return its parser."""
    p = subparsers.add_parser(
        "tune", help="optimise hyperparameters with Optuna (needs the tune extra)",
        description="Search a parameter space for the GRU4Rec parameters that maximise\n"
                    "Recall@k or MRR@k on a validation set. Trials run in this process; the\n"
                    "study is stored (rerun the same command to continue it, or start it on\n"
                    "several machines with one --storage) and hopeless trials are pruned.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", metavar="PATH", help="Training events (as for gru4rec run).")
    p.add_argument("test", metavar="TEST_PATH", help="Validation events the trials are "
                                                    "measured on.")
    p.add_argument("-fp", "--fixed_parameters", metavar="PARAM_STRING",
                   help="Parameters that are not searched, as a parameter string "
                        "(loss=bpr-max,layers=100,n_epochs=10).")
    p.add_argument("-opf", "--optuna_parameter_file", metavar="PATH", required=True,
                   help="The parameter space: one JSON object per line (name, dtype "
                        "int|float|categorical, values, optional step and log), or .toml.")
    p.add_argument("-m", "--measure", metavar="AT", type=positive_int, default=20,
                   help="List length k of the optimised Recall@k / MRR@k. (Default: 20)")
    p.add_argument("-nt", "--ntrials", metavar="NT", type=positive_int, default=50,
                   help="Trials of the study, all workers together. (Default: 50)")
    p.add_argument("-fm", "--final_measure", metavar="AT", type=positive_int, nargs="*",
                   default=[20], help="List lengths of the final run of the best "
                                      "parameters. (Default: 20)")
    p.add_argument("-pm", "--primary_metric", choices=("recall", "mrr"), default="recall",
                   help="The optimised metric. (Default: recall)")
    p.add_argument("-e", "--eval_type", choices=EVAL_TYPES, default="standard",
                   metavar="EVAL_TYPE", help="Tie handling of the evaluation. (Default: "
                                             "standard)")
    p.add_argument("-d", "--device", metavar="D", help="cpu, cuda or cuda:N. (Default: cuda "
                                                       "when available, else cpu)")
    p.add_argument("-ik", "--item_key", default="ItemId", metavar="IK")
    p.add_argument("-sk", "--session_key", default="SessionId", metavar="SK")
    p.add_argument("-tk", "--time_key", default="Time", metavar="TK")
    p.add_argument("-o", "--output_dir", default="tuning", metavar="DIR",
                   help="Where the results go (and the study, by default). (Default: tuning)")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage URL shared by all workers (sqlite:///study.db, "
                        "postgresql://..., mysql://...). (Default: sqlite:///DIR/study.db)")
    p.add_argument("--study-name", metavar="NAME",
                   help="The study in the storage. (Default: the space file's name)")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median",
                   help="Stop hopeless trials early: median (below the median of the 10 "
                        "most recently completed trials at that point), hyperband, or none. "
                        "(Default: median)")
    p.add_argument("--prune_early", metavar="FRACTIONS", type=_fractions,
                   default=_fractions(_PRUNE_EARLY),
                   help="Besides after each epoch, the pruner checks a trial at these "
                        "fractions of its first epoch (comma-separated; none: after each "
                        f"epoch only). (Default: {_PRUNE_EARLY})")
    p.add_argument("--prune_events", metavar="N", type=positive_int, default=200_000,
                   help="The evaluations for pruning use a fixed subsample of whole "
                        "validation sessions with at most N events (the trial's value "
                        "always uses all). (Default: 200000)")
    p.add_argument("--seed", type=int, default=42, help="Training seed of every trial. "
                                                        "(Default: 42)")
    p.add_argument("--sampler_seed", type=int, metavar="N",
                   help="Seed of the sampler (give each worker its own). (Default: random)")
    p.add_argument("-ss", "--sample_store_size", metavar="SS", type=positive_int,
                   default=10_000_000, help="As for gru4rec run. (Default: 10000000)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads PyTorch may use; 0 keeps its default. (Default: 0)")
    p.add_argument("--no_final", action="store_true",
                   help="Skip the final run of the best parameters on -fm.")
    return p


def _fractions(text: str) -> tuple[float, ...]:
    """``0.25,0.5`` -> (0.25, 0.5); ``none`` -> () (the range is checked by tune)."""
    if text.strip().lower() in ("none", ""):
        return ()
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated fractions like 0.25,0.5 (or none), got {text!r}"
        ) from None


def _say(text: str) -> None:
    print(text, flush=True)


def _shown(params: dict[str, Any]) -> str:
    """``a=1,b=0.15`` (floats of a stepped range without their binary noise)."""
    return ",".join(f"{k}={round(v, 10) if isinstance(v, float) else v}"
                    for k, v in params.items())


def execute(args: argparse.Namespace) -> int:
    """Run ``gru4rec tune``; returns the exit code."""
    from gru4rec.config import GRU4RecConfig, parse_param_string
    from gru4rec.errors import ConfigError, DataError
    from gru4rec.tuning import read_space, require_optuna, tune

    optuna = require_optuna()
    fixed = parse_param_string(args.fixed_parameters) if args.fixed_parameters else {}
    space = read_space(args.optuna_parameter_file, fixed)
    for path in (args.path, args.test):
        if not Path(path).is_file():
            raise DataError(f"{path} does not exist")
    out = Path(args.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output folder {out}: {exc.strerror}") from None
    storage = args.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    name = args.study_name or Path(args.optuna_parameter_file).stem
    _say("-" * 80)
    _say("PARAMETER SPACE")
    for param in space:
        _say("\t" + param.describe())
    _say("-" * 80)
    _say(f"study {name!r} in {storage.split('@')[-1]}; {args.ntrials} "
         f"trial{'s' if args.ntrials != 1 else ''}, "
         f"{args.primary_metric}@{args.measure}, pruner {args.pruner}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # this command prints its own lines
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    printer = _Printer(args)
    with printer.bar:  # wiped even when the study stops with an error
        study = tune(args.path, args.test, space, fixed=fixed, n_trials=args.ntrials,
                     storage=storage, study_name=name, cutoff=args.measure,
                     metric=args.primary_metric, mode=args.eval_type, pruner=args.pruner,
                     prune_events=args.prune_events, prune_early=args.prune_early,
                     device=args.device, seed=args.seed,
                     sampler_seed=args.sampler_seed, sample_store_size=args.sample_store_size,
                     session_key=args.session_key, item_key=args.item_key,
                     time_key=args.time_key, on_trial=printer.trial, on_epoch=printer.epoch,
                     progress=printer.progress)
    _write_trials(study, out)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        _say("no trial completed; nothing to report (see trials.csv for the errors)")
        return 1
    best = study.best_trial
    config = GRU4RecConfig.from_dict({**fixed, **best.params})
    names = list(fixed) + [p.name for p in space]
    params_file = out / "best_params.py"
    _write_params(params_file, config.to_dict(), names, best, args)
    _say(f"best trial #{best.number}: {args.primary_metric}@{args.measure} = "
         f"{best.value:.6f}; parameters in {params_file}")
    _say(f"best parameters: {_shown(best.params)}")
    _plots(study, out)
    if not args.no_final:
        _final_run(args, config)
    return 0


class _Printer:
    """The live lines: a progress bar while a trial trains (tqdm, on a terminal), then one
    line per epoch and one per trial, each with the trial count and the study's best value
    so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        from gru4rec.cli.progress import StepProgress

        self.n, self.metric = args.ntrials, f"{args.primary_metric}@{args.measure}"
        self.bar = StepProgress()
        self.told = False  # whether the pruning sample was described
        early = [f"{f:g}" for f in args.prune_early]
        at = " and ".join([", ".join(early[:-1]), early[-1]] if len(early) > 1 else early)
        self.when = "after each epoch" + (f" and at {at} of the first" if at else "")

    def _where(self, finished: int, number: int, epoch: float, n_epochs: int) -> str:
        return f"[{min(finished + 1, self.n)}/{self.n}] trial {number} epoch {epoch:g}/{n_epochs}"

    @staticmethod
    def _best(best: tuple[float, int] | None) -> str:
        return "no complete trial yet" if best is None else \
            f"best {best[0]:.6f} (trial {best[1]})"

    def progress(self, p: TrialProgress) -> None:
        """Draw the running trial's bar: where the study is, its best, the epoch's steps."""
        self.bar.label = f"{self._where(p.finished, p.number, p.epoch, p.n_epochs)} | " \
                         f"{self._best(p.best)}"
        self.bar(p.done, p.steps)

    def epoch(self, e: EpochDone) -> None:
        """Wipe the bar and print the epoch's line (the first one also tells how the pruner
        measures)."""
        self.bar.close()
        if e.value is not None and not self.told:
            self.told = True
            _say(f"the pruner compares {self.metric} {self.when} on " + (
                f"the whole validation set ({e.valid_events:,} events)"
                if e.sample_events == e.valid_events else
                f"a fixed subsample of whole sessions: {e.sample_events:,} of "
                f"{e.valid_events:,} validation events (--prune_events)"))
        shown = "" if e.value is None else f" {self.metric} {e.value:.6f} (pruning sample)"
        _say(f"{self._where(e.finished, e.number, e.epoch, e.n_epochs)}:{shown} | "
             f"{self._best(e.best)}")

    def trial(self, done: TrialDone) -> None:
        """Wipe the bar and print the finished trial's line."""
        self.bar.close()
        what = {"COMPLETE": f"{self.metric} = {done.value:.6f}" if done.value is not None
                else "complete",
                "PRUNED": f"pruned after {done.epochs:g} epoch"
                          f"{'' if done.epochs == 1 else 's'}",
                "FAIL": f"failed: {done.error}"}.get(done.state, done.state)
        _say(f"[{done.finished}/{self.n}] trial {done.number} {what} | {self._best(done.best)} "
             f"| {_shown(done.params)}")


def _write_trials(study: Any, out: Path) -> None:
    """trials.csv and trials.json: every trial of the study (surplus ones left out)."""
    rows = []
    for t in study.trials:
        if t.user_attrs.get("surplus"):
            continue
        rows.append({"number": t.number, "state": t.state.name,
                     "value": t.value if t.state.name == "COMPLETE" else None,
                     "recall": t.user_attrs.get("recall"), "mrr": t.user_attrs.get("mrr"),
                     "epochs": t.user_attrs.get("epochs"),
                     "seconds": t.user_attrs.get("seconds"),
                     "worker": t.user_attrs.get("worker"),
                     "error": t.user_attrs.get("error"), **{f"param_{k}": v for k, v in
                                                            t.params.items()}})
    (out / "trials.json").write_text(json.dumps(rows, indent=1) + "\n")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "trials.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def _write_params(path: Path, values: dict[str, Any], names: list[str], best: Any,
                  args: argparse.Namespace) -> None:
    """A ``gru4rec run -pf`` file with the fixed and the best searched parameters."""
    lines = [f"# best trial #{best.number} of gru4rec tune ({args.primary_metric}@"
             f"{args.measure} = {best.value:.6f} on {args.test})",
             f"# gru4rec run {args.path} -pf {path} -t TEST_PATH",
             "from collections import OrderedDict", "gru4rec_params = OrderedDict(["]
    for name in names:
        value = values[name]
        if isinstance(value, float) and math.isfinite(value):
            value = round(value, 10)  # 0.15000000000000002 -> 0.15
        lines.append(f"    ({name!r}, {value!r}),")
    lines.append("])")
    path.write_text("\n".join(lines) + "\n")


def _plots(study: Any, out: Path) -> None:
    """Optimisation history, parameter importances and slices as HTML (plotly) and PNG
    (matplotlib); skipped with a notice when the plot extra is missing."""
    from importlib.util import find_spec

    if find_spec("plotly") is None or find_spec("matplotlib") is None:
        _say('plots skipped: they need plotly and matplotlib (pip install "gru4rec[plot]")')
        return
    import warnings

    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    written = []
    for name in ("optimization_history", "param_importances", "slice"):
        with warnings.catch_warnings():  # optuna marks its matplotlib plots experimental
            warnings.simplefilter("ignore")
            ok = _plot(vis, vis_mpl, plt, study, name, out)
        if ok:
            written.append(name)
    if written:
        _say(f"plots: {', '.join(written)} (.html and .png) in {out}")


def _plot(vis: Any, vis_mpl: Any, plt: Any, study: Any, name: str, out: Path) -> bool:
    """One plot as ``name.html`` and ``name.png``; False (with a notice) when it cannot be
    drawn, e.g. with too few trials."""
    try:
        getattr(vis, f"plot_{name}")(study).write_html(out / f"{name}.html",
                                                       include_plotlyjs="directory")
        axes = getattr(vis_mpl, f"plot_{name}")(study)
        fig = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        fig.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        return True
    # too few trials, or (optuna < 5) importances that need scikit-learn
    except (ValueError, RuntimeError, ZeroDivisionError, ImportError) as exc:
        _say(f"plot {name} skipped: {exc}")
        return False


def _final_run(args: argparse.Namespace, config: Any) -> None:
    """Train the best parameters on PATH and measure them on TEST_PATH at -fm."""
    from gru4rec.cli.progress import StepProgress, fit_with_progress
    from gru4rec.data.io import read_events
    from gru4rec.evaluation import evaluate
    from gru4rec.model import GRU4Rec

    keys = {"session_key": args.session_key, "item_key": args.item_key,
            "time_key": args.time_key}
    _say(f"Running final eval @{args.final_measure}:")
    model = GRU4Rec(config, device=args.device, seed=args.seed,
                    sample_store_size=args.sample_store_size)
    fit_with_progress(model, read_events(args.path, **keys), _say)
    with StepProgress("Evaluating") as bar:
        res = evaluate(model, read_events(args.test, **keys),
                       cutoffs=args.final_measure or [20], mode=args.eval_type, progress=bar)
    for line in res.lines():
        _say(line)
