"""``gru4rec run``: train (or load) a model and measure Recall@k / MRR@k on test files.

Compatible with the original ``run.py``: same flags, same stdout lines (``SET ... TO ...``,
``EpochN --> loss: ...``, ``Recall@k: ... MRR@k: ...``), plus the flags of the official
PyTorch port (device, column names, primary metric). Everything that can be checked before
training (parameters, test files, save folder, device) is checked first, so a typo never
costs a training run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gru4rec.cli.arguments import Subparsers, add_column_arguments, positive_int
from gru4rec.cli.models import MODEL_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from gru4rec.baselines import Baseline
    from gru4rec.config import GRU4RecConfig
    from gru4rec.data.events import Events
    from gru4rec.evaluation import EvalResult
    from gru4rec.model import GRU4Rec
    from gru4rec.validation import Validation

__all__ = ["add_parser", "execute"]

EVAL_TYPES = ("standard", "conservative", "median", "tiebreaking")
_KINDS = {".tsv": "TAB separated file", ".txt": "TAB separated file", ".csv": "CSV file",
          ".parquet": "Parquet file", ".pickle": "pickled pandas.DataFrame",
          ".pkl": "pickled pandas.DataFrame"}

_EXAMPLES = """\
examples:
  train with a parameter string, evaluate at several list lengths:
    gru4rec run train.tsv -t test.tsv -m 1 5 10 20 \\
        -ps loss=bpr-max,layers=100,n_epochs=10,batch_size=32,n_sample=2048
  train with a parameter file and save the model:
    gru4rec run train.tsv -pf params.py -s model.pt
  evaluate a saved model with pessimistic tie handling:
    gru4rec run model.pt -l -t test.tsv -m 1 5 10 20 -e conservative
  continue a saved model on new clicks (new items get rows), 2 epochs, and save it:
    gru4rec run today.tsv --retrain model.pt -ps n_epochs=2 -s model_today.pt -t test.tsv
  a baseline on the same evaluator (V-SKNN; see 'gru4rec compare' for several at once):
    gru4rec run train.tsv -t test.tsv --model vsknn -ps k=100,sample_size=500 -e conservative
    gru4rec run train.tsv -t test.tsv -pf configs/baselines/sr_rsc15_100k.py
"""


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to ``subparsers`` and return its parser."""
    p = subparsers.add_parser(
        "run", help="train or load a model and evaluate it (the original run.py)",
        description="Train a GRU4Rec model or a baseline (or load a saved one) and report\n"
                    "Recall@k and MRR@k on one or more test sets.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", metavar="PATH",
                   help="Training events (.tsv/.txt tab separated, .csv, .parquet or a pickled "
                        "pandas DataFrame), or a saved model file when -l is given.")
    src = p.add_argument_group("where the model comes from (give exactly one of -ps, -pf, -l "
                               "and --retrain; -ps or -pf may come with --retrain)")
    src.add_argument("-ps", "--parameter_string", metavar="PARAM_STRING",
                     help="Hyperparameters as name=value pairs joined by commas, e.g. "
                          "loss=bpr-max,layers=100,n_epochs=5. Booleans are True/False; "
                          "several layers are separated by / (layers=200/200).")
    src.add_argument("-pf", "--parameter_file", metavar="PARAM_PATH",
                     help="Hyperparameters from a file: a .py file defining an OrderedDict "
                          "named gru4rec_params (read as literals, never executed) or a "
                          ".toml file.")
    src.add_argument("-l", "--load_model", action="store_true",
                     help="PATH is a model saved with -s: load it instead of training.")
    src.add_argument("--model", choices=MODEL_NAMES, metavar="NAME",
                     help="Train this model: gru4rec or one of the baselines "
                          f"({', '.join(MODEL_NAMES[1:])}), with -ps/-pf holding its "
                          "parameters (names as in BASELINES.md, e.g. k=100,sample_size=500). "
                          "(Default: the model a -pf file names, else gru4rec)")
    src.add_argument("--retrain", metavar="MODEL_PATH",
                     help="Continue the model saved in MODEL_PATH on the events in PATH: "
                          "items not seen before get new rows, known items keep theirs, and "
                          "the optimiser continues from the state saved with the model. Its "
                          "hyperparameters are the model's; -ps/-pf may change only the "
                          "training ones (n_epochs, learning_rate, momentum, batch_size, ...).")
    src.add_argument("--fresh_optimizer", action="store_true",
                     help="With --retrain: start the optimiser state afresh instead of "
                          "continuing the saved one.")
    _add_training_args(p.add_argument_group("training"))
    _add_evaluation_args(p.add_argument_group("evaluation"))
    data = p.add_argument_group("data columns")
    add_column_arguments(data)
    data.add_argument("-uk", "--user_key", metavar="UK",
                      help="Column holding the user ids, for sequence-aware training "
                           "(-ps session_boundary=carry) and --continue_state. (Default: no "
                           "user column)")
    return p


def _add_training_args(group: argparse._ArgumentGroup) -> None:
    group.add_argument("-s", "--save_model", metavar="MODEL_PATH",
                       help="After training, write the model to this file. (Default: not "
                            "saved)")
    group.add_argument("--slim", action="store_true",
                       help="With -s: save without the optimiser state (a smaller file for "
                            "serving; retraining it starts the optimiser afresh).")
    group.add_argument("--checkpoint_dir", metavar="DIR",
                       help="Write a checkpoint to DIR after every epoch (weights, optimiser "
                            "and sampler state, random generators), keeping the newest "
                            "--keep_checkpoints.")
    group.add_argument("--keep_checkpoints", metavar="N", type=positive_int, default=3,
                       help="How many checkpoints to keep in --checkpoint_dir. (Default: 3)")
    group.add_argument("--resume", action="store_true",
                       help="Continue from the newest valid checkpoint in --checkpoint_dir "
                            "(same data and parameters; n_epochs may grow); the result "
                            "equals an uninterrupted run's.")
    group.add_argument("-d", "--device", metavar="DEVICE",
                       help="cpu, cuda or cuda:N. (Default: cuda when available, else cpu)")
    group.add_argument("--seed", type=int, default=42,
                       help="Seed of initialisation, sampling, dropout and random "
                            "tie-breaking. (Default: 42)")
    group.add_argument("--threads", type=int, default=0, metavar="N",
                       help="CPU threads PyTorch may use; 0 keeps its default (all cores). "
                            "Small models on a busy CPU are often much faster with 1. "
                            "(Default: 0)")
    group.add_argument("-ss", "--sample_store_size", metavar="SS", type=positive_int,
                       default=10_000_000,
                       help="Size, in item ids, of the buffer of pre-drawn negative samples. "
                            "Rarely worth changing. (Default: 10000000)")
    group.add_argument("--sample_store_on_cpu", action="store_true",
                       help="Keep the negative sample buffer in main memory instead of on "
                            "the training device (slower on GPU).")
    group.add_argument("--static_shapes", action="store_true",
                       help="Train on fixed-shape steps (finished sessions masked at the end "
                            "of an epoch; same losses); on CUDA the step is replayed as a "
                            "CUDA graph. For cross-entropy/softmax or bpr-max/ELU with "
                            "Adagrad and a tanh GRU.")


def _add_evaluation_args(group: argparse._ArgumentGroup) -> None:
    group.add_argument("-t", "--test", metavar="TEST_PATH", nargs="+", default=[],
                       help="One or more test event files to evaluate on, separated by "
                            "spaces. (Default: no evaluation)")
    group.add_argument("-m", "--measure", metavar="AT", nargs="+", type=positive_int,
                       default=[20], help="Recommendation list length(s) k for Recall@k and "
                                          "MRR@k. (Default: 20)")
    group.add_argument("-e", "--eval_type", metavar="EVAL_TYPE", choices=EVAL_TYPES,
                       default="standard",
                       help="How items scoring exactly as high as the target are counted: "
                            "standard (in the target's favour), conservative (against it), "
                            "median (halfway) or tiebreaking (random order). "
                            "(Default: standard)")
    group.add_argument("--test_against_items", metavar="N_TEST_ITEMS", type=positive_int,
                       help="Rank the target only against the N most popular training items. "
                            "This inflates the metrics; use it only for catalogues of "
                            "millions of items, with N of at least 50000. (Default: all "
                            "items)")
    group.add_argument("--continue_state", action="store_true",
                       help="Start each test user from their hidden state at the end of the "
                            "training data (a model trained with session_boundary=carry; "
                            "needs -uk). The predictions counted are the same: the next item "
                            "within a session.")
    group.add_argument("--eval_batch_size", type=positive_int, default=512,
                       help="Test sessions evaluated in parallel. (Default: 512)")
    group.add_argument("-pm", "--primary_metric", choices=("recall", "mrr"), default="recall",
                       help="Metric reported by -lpm: recall or mrr. (Default: recall)")
    group.add_argument("--valid", metavar="VALID_PATH",
                       help="Validation events measured after every epoch (the -pm metric at "
                            "the largest -m, -e ties), shown on the epoch line; the best "
                            "epoch's weights are kept. (Default: none)")
    group.add_argument("--valid_sample", metavar="N", type=positive_int,
                       help="With --valid: measure a fixed random subset of its whole "
                            "sessions with at most N events. (Default: all of it)")
    group.add_argument("--patience", metavar="P", type=positive_int,
                       help="With --valid: stop after P epochs without improvement. "
                            "(Default: never stop early)")
    group.add_argument("--report", metavar="DIR",
                       help="Write a run report to DIR: metrics.json (every metric, the "
                            "config, data statistics, per-epoch figures, times, machine, the "
                            "model file's sha256) and plots (with the plot extra).")
    group.add_argument("--mlflow", metavar="URI", nargs="?", const="",
                       help="Log the run to MLflow (the track extra): parameters, per-epoch "
                            "and final metrics, the report's plots and the model file. URI: "
                            "any tracking URI; none: a local mlruns/ folder.")
    group.add_argument("--mlflow_experiment", metavar="NAME", default="gru4rec",
                       help="The MLflow experiment of --mlflow. (Default: gru4rec)")
    group.add_argument("--json", action="store_true",
                       help="Print the results as one JSON object on stdout (the model, the "
                            "training time, every metric of every test file), for scripts; "
                            "the usual lines then go to stderr.")
    group.add_argument("-lpm", "--log_primary_metric", action="store_true",
                       help="Finish with a 'PRIMARY METRIC: value' line: the primary metric "
                            "at the largest k on the first test file (handy for tuning "
                            "scripts).")


_LINES = {"to": sys.stdout}  # where the original's lines go (stderr under --json)


def _say(text: str) -> None:
    """Print one line at once (keeps its order with stderr messages): on stdout, or on
    stderr when --json keeps stdout for the JSON object."""
    print(text, file=_LINES["to"], flush=True)


def _kind(path: str) -> str:
    return _KINDS.get(Path(path).suffix.lower(), "file")


def _check_args(args: argparse.Namespace) -> None:
    """Everything that can be wrong before any work: raise ConfigError/DataError/..."""
    from gru4rec.errors import ConfigError

    given = [flag for flag, on in (("-ps/--parameter_string", args.parameter_string is not None),
                                   ("-pf/--parameter_file", args.parameter_file is not None),
                                   ("-l/--load_model", args.load_model)) if on]
    if args.retrain is not None:
        if args.load_model:
            raise ConfigError("--retrain trains the model it loads; it cannot be used with "
                              "-l/--load_model")
        given = given if len(given) > 1 else []  # one of -ps and -pf: overrides
    elif args.fresh_optimizer:
        raise ConfigError("--fresh_optimizer applies to --retrain only")
    if not given and args.retrain is None and args.model in (None, "gru4rec"):
        raise ConfigError("nothing to train or load: give the hyperparameters with "
                          "-ps/--parameter_string or -pf/--parameter_file, load a saved "
                          "model with -l/--load_model, or continue one with --retrain")
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)} cannot be used together; give exactly one "
                          "of -ps, -pf and -l")
    if args.resume and args.checkpoint_dir is None:
        raise ConfigError("--resume needs --checkpoint_dir DIR (where the checkpoints are)")
    if args.checkpoint_dir is not None and Path(args.checkpoint_dir).is_file():
        raise ConfigError(f"--checkpoint_dir {args.checkpoint_dir} is a file; give a folder")
    if args.slim and args.save_model is None:
        raise ConfigError("--slim applies to -s/--save_model; give the file to save to")
    if args.threads < 0:
        raise ConfigError(f"--threads must be >= 0 (0 = PyTorch's default), got {args.threads}")
    if args.continue_state and args.user_key is None:
        raise ConfigError("--continue_state needs the user column: give -uk/--user_key")
    if args.continue_state and not args.test:
        raise ConfigError("--continue_state applies to the evaluation: give a test file "
                          "(-t/--test)")
    if args.log_primary_metric and not args.test:
        raise ConfigError("-lpm/--log_primary_metric needs a test file (-t/--test)")
    if (args.valid_sample is not None or args.patience is not None) and args.valid is None:
        raise ConfigError("--valid_sample and --patience apply to --valid; give the "
                          "validation file")
    if args.valid is not None and (args.load_model or args.retrain is not None):
        raise ConfigError("--valid measures a model while it trains; it cannot be used with "
                          "-l/--load_model or --retrain")
    if args.mlflow is not None:
        from gru4rec.tracking import require_mlflow

        require_mlflow()  # missing: the install line, before any training
    if args.report is not None and Path(args.report).is_file():
        raise ConfigError(f"--report {args.report} is a file; give a folder")
    if args.json and args.log_primary_metric:
        raise ConfigError("--json already holds every metric; drop -lpm/--log_primary_metric")
    _check_paths(args)


def _check_paths(args: argparse.Namespace) -> None:
    """Test files must exist and the model's folder too, before any training starts."""
    from gru4rec.errors import ConfigError, DataError, ModelFileError

    for test in args.test:
        if not Path(test).is_file():
            what = "is a directory" if Path(test).is_dir() else "does not exist"
            raise DataError(f"test file {test} {what}; check the -t/--test paths")
    if args.save_model is not None:
        if args.load_model:
            raise ConfigError("-s/--save_model saves a newly trained model; it cannot be "
                              "used with -l/--load_model")
        target = Path(args.save_model)
        if target.is_dir():
            raise ModelFileError(f"cannot save the model to {target}: it is a directory; "
                                 "give a file name such as model.pt")
        if not target.parent.is_dir():
            raise ModelFileError(f"cannot save the model to {target}: folder {target.parent} "
                                 "does not exist; create it first")
    if args.retrain is not None and not Path(args.retrain).is_file():
        raise ModelFileError(f"model file {args.retrain} does not exist; check the --retrain "
                             "path")


_GRU4REC_ONLY = (("--retrain", "retrain"), ("--checkpoint_dir", "checkpoint_dir"),
                 ("--static_shapes", "static_shapes"), ("-uk/--user_key", "user_key"),
                 ("--continue_state", "continue_state"), ("--slim", "slim"),
                 ("--test_against_items", "test_against_items"), ("-d/--device", "device"),
                 ("--valid", "valid"),
                 ("--sample_store_on_cpu", "sample_store_on_cpu"))


def _model_name(args: argparse.Namespace) -> str:
    """The model to train: --model, else the one a -pf file names, else gru4rec.

    Raises:
        ConfigError: --model and the -pf file name different models, or options of GRU4Rec
            are given for a baseline.
    """
    from gru4rec.cli.models import file_model
    from gru4rec.errors import ConfigError

    pf = args.parameter_file
    named = file_model(pf) if pf is not None and Path(pf).is_file() else None
    if args.model is not None and named is not None and named != args.model:
        raise ConfigError(f"--model {args.model} but the parameter file "
                          f"{args.parameter_file} is for {named}; drop one of them")
    name = args.model or named or "gru4rec"
    if name != "gru4rec":
        given = [flag for flag, dest in _GRU4REC_ONLY if getattr(args, dest)]
        if given:
            raise ConfigError(f"{', '.join(given)} apply to GRU4Rec models only, not to "
                              f"the {name} baseline (which runs on the CPU)")
    return str(name)


def _train_baseline(args: argparse.Namespace, name: str) -> Baseline:
    """Train the baseline ``name`` with -ps/-pf's parameters, printing the SET lines."""
    import time

    from gru4rec.baselines import make_baseline
    from gru4rec.params import parse_param_file, parse_param_string

    if args.parameter_file is not None:
        params = parse_param_file(args.parameter_file)
        _say(f"Loaded parameters from file: {args.parameter_file}")
    else:
        params = dict(parse_param_string(args.parameter_string or "")) \
            if args.parameter_string else {}
    model = make_baseline(name, params, seed=args.seed)
    values = model.get_params()
    for key in params:
        _say(f"SET {key} TO {values[key]} (type: {type(values[key])})")
    _say(f"Model: {name} ({model!r})")
    _say("Loading training data...")
    events = _read(args.path, args)
    _say("Started training")
    start = time.perf_counter()
    model.fit(events)
    _say(f"Total training time: {time.perf_counter() - start:.2f}s")
    if args.save_model is not None:
        _say(f"Saving trained model to: {args.save_model}")
        model.save(args.save_model)
    return model


def _read_config(args: argparse.Namespace, base: GRU4RecConfig | None = None) -> GRU4RecConfig:
    """Parse -ps / -pf (over ``base``'s values when given), print the original's SET lines,
    return the validated config."""
    from gru4rec.config import GRU4RecConfig, parse_param_file, parse_param_string

    if args.parameter_file is not None:
        params = parse_param_file(args.parameter_file)
        _say(f"Loaded parameters from file: {args.parameter_file}")
    elif args.parameter_string is not None:
        params = parse_param_string(args.parameter_string)
    else:
        params = {}
    config = GRU4RecConfig.from_dict(params) if base is None else base.replace(**params)
    values = config.to_dict()
    for name in params:  # the order the user gave them in
        _say(f"SET {name} TO {values[name]} (type: {type(values[name])})")
    return config


def _read(path: str, args: argparse.Namespace) -> Events:
    from gru4rec.data.io import read_events

    _say(f"Loading data from {_kind(path)}: {path}")
    events = read_events(path, session_key=args.session_key, item_key=args.item_key,
                         time_key=args.time_key, user_key=args.user_key)
    if args.report is not None or args.mlflow is not None:
        from gru4rec.reports import data_stats

        args.record.setdefault("data", {})[path] = data_stats(events, path)
    return events


def _train(args: argparse.Namespace, config: GRU4RecConfig, device: str) -> GRU4Rec:
    """Load the training data and fit a model, printing each epoch's line as it ends."""
    from gru4rec.cli.progress import fit_with_progress
    from gru4rec.errors import ConfigError
    from gru4rec.model import GRU4Rec

    if config.session_boundary == "carry" and args.user_key is None:
        raise ConfigError("session_boundary=carry trains on users' sequences: give the user "
                          "column with -uk/--user_key")
    model = GRU4Rec(config, device=device, seed=args.seed,
                    sample_store_size=args.sample_store_size,
                    sample_store_on_cpu=args.sample_store_on_cpu,
                    static_shapes=args.static_shapes)
    _say("Loading training data...")
    events = _read(args.path, args)
    _say("Started training")
    seconds = fit_with_progress(model, events, _say, _validation(args), args.record,
                                **_checkpoint_args(args))
    _say(f"Total training time: {seconds:.2f}s")
    _save(args, model)
    return model


def _retrain(args: argparse.Namespace, device: str) -> GRU4Rec:
    """Load --retrain's model, apply -ps/-pf (training parameters only), continue it on
    PATH's events, printing each epoch's line."""
    from gru4rec.cli.progress import fit_with_progress
    from gru4rec.model import GRU4Rec
    from gru4rec.retraining import check_retrain_config

    _say(f"Loading trained model from file: {args.retrain}")
    model = GRU4Rec.load(args.retrain, device=device)
    model.seed, model.static_shapes = args.seed, args.static_shapes
    model.sample_store_size = args.sample_store_size
    model.sample_store_on_cpu = args.sample_store_on_cpu
    trained = model.config
    model.config = _read_config(args, trained)
    check_retrain_config(trained, model.config)  # before reading the data
    if model.optimizer_state_ is None and not args.fresh_optimizer:
        _say(f"{args.retrain} has no optimiser state (saved with --slim): the optimiser "
             "starts afresh")
    n_before = model.n_items
    _say("Loading training data...")
    events = _read(args.path, args)
    _say("Started retraining")
    seconds = fit_with_progress(model, events, _say, retrain=True,
                                fresh_optimizer=args.fresh_optimizer,
                                **_checkpoint_args(args))
    _say(f"Total training time: {seconds:.2f}s")
    _say(f"Items: {model.n_items} ({model.n_items - n_before} new)")
    _save(args, model)
    return model


def _validation(args: argparse.Namespace) -> Validation | None:
    """--valid's per-epoch measure (the -pm metric at the largest -m, -e ties), or None."""
    from gru4rec.validation import Validation

    if args.valid is None:
        return None
    _say(f"Validation data: {args.valid}")
    return Validation(args.valid, cutoff=max(args.measure), metric=args.primary_metric,
                      mode=args.eval_type, sample=args.valid_sample, patience=args.patience)


def _checkpoint_args(args: argparse.Namespace) -> dict[str, Any]:
    return {"checkpoint_dir": args.checkpoint_dir, "keep_checkpoints": args.keep_checkpoints,
            "resume": args.resume}


def _save(args: argparse.Namespace, model: GRU4Rec) -> None:
    if args.save_model is not None:
        _say(f"Saving trained model to: {args.save_model}"
             + (" (slim: without the optimiser state)" if args.slim else ""))
        model.save(args.save_model, optimizer=not args.slim)


def _evaluate(args: argparse.Namespace, model: GRU4Rec | Baseline, path: str) -> EvalResult:
    """Evaluate on one test file, printing the original's lines."""
    from gru4rec.evaluation import evaluate

    _say("Loading test data...")
    events = _read(path, args)
    cutoffs = sorted(set(args.measure))
    _say(f"Starting evaluation (cut-off={cutoffs}, using {args.eval_type} mode for "
         "tiebreaking" + (", each user from their training state" if args.continue_state
                          else "") + ")")
    from gru4rec.cli.progress import StepProgress

    with StepProgress("Evaluating") as bar:  # tqdm on a terminal's stderr, wiped when done
        result = evaluate(model, events, cutoffs=cutoffs, mode=args.eval_type,
                          batch_size=args.eval_batch_size,
                          test_against_items=args.test_against_items, seed=args.seed,
                          continue_state=args.continue_state, progress=bar)
    if result.n_dropped_events:
        _say(f"Dropped {result.n_dropped_events} test events with items not seen in training")
    _say(f"Evaluation took {result.seconds:.2f}s")
    for line in result.lines():
        _say(line)
    return result


def execute(args: argparse.Namespace) -> int:
    """Run the subcommand; library errors propagate to ``main`` (exit code 2)."""
    import torch

    from gru4rec.cli.models import load_any
    from gru4rec.model import resolve_device

    name = "gru4rec" if args.load_model else _model_name(args)
    _check_args(args)
    device = str(resolve_device(args.device)) if name == "gru4rec" else "cpu"
    threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    _LINES["to"] = sys.stderr if args.json else sys.stdout
    args.record = {}  # what the run report needs: data statistics, validation history
    start = time.perf_counter()
    try:
        model: GRU4Rec | Baseline
        if args.load_model:
            _say(f"Loading trained model from file: {args.path}")
            model = load_any(args.path, device=args.device)
        elif name != "gru4rec":
            model = _train_baseline(args, name)
        elif args.retrain is not None:
            model = _retrain(args, device)
        else:
            model = _train(args, _read_config(args), device)
        seconds = time.perf_counter() - start
        results = [_evaluate(args, model, path) for path in args.test]
    finally:
        torch.set_num_threads(threads)  # leave the process as it was (in-process callers)
        _LINES["to"] = sys.stdout
    if args.report is not None or args.mlflow is not None:
        _write_report(args, model, seconds, results)
    if args.json:
        print(json.dumps(_json_result(args, model, seconds, results)), flush=True)
    if args.log_primary_metric:
        name = "Recall" if args.primary_metric == "recall" else "MRR"
        _say(f"PRIMARY METRIC: {results[0][f'{name}@{max(args.measure)}']}")
    return 0


def _json_result(args: argparse.Namespace, model: GRU4Rec | Baseline, seconds: float,
                 results: list[EvalResult]) -> dict[str, Any]:
    """What --json prints: the model, the time to train (or load) it, and each test file's
    metrics with what they were measured on."""
    from gru4rec.baselines import Baseline

    if isinstance(model, Baseline):
        kind, params = model.name, model.get_params()
    else:
        kind, params = "gru4rec", model.config.to_dict()
    return {"model": kind, "params": params, "loaded": bool(args.load_model),
            "train_seconds": seconds,
            "tests": [{"path": path, "metrics": r.metrics, "n_predictions": r.n_predictions,
                       "n_dropped_events": r.n_dropped_events, "mode": r.mode,
                       "cutoffs": list(r.cutoffs), "seconds": r.seconds}
                      for path, r in zip(args.test, results, strict=True)]}


def _write_report(args: argparse.Namespace, model: GRU4Rec | Baseline, seconds: float,
                  results: list[EvalResult]) -> None:
    """--report: metrics.json and the plots of this run into args.report; --mlflow: the
    same (in a temporary folder without --report) logged to MLflow."""
    from gru4rec.reports import build_report, write_report

    data = args.record.get("data", {})
    report = build_report(
        model, dict(zip(args.test, results, strict=True)),
        train=None if args.load_model else data.get(args.path),
        tests={p: data[p] for p in args.test if p in data},
        validation=args.record.get("validation"), train_seconds=seconds,
        model_file=args.save_model, command=getattr(args, "argv", None))
    with tempfile.TemporaryDirectory(prefix="gru4rec-report-") as tmp:
        folder = args.report if args.report is not None else tmp  # MLflow only: a temp one
        files = write_report(folder, report)
        plots = len(files) - 1
        if args.report is not None:
            _say(f"Report written to {args.report}: {files[0].name}"
                 + (f" and {plots} plot files" if plots else
                    ' (no plots: pip install "gru4rec[plot]" for them)'))
        if args.mlflow is not None:
            from gru4rec.tracking import DEFAULT_URI, track_run

            run_id = track_run(report, files, uri=args.mlflow or None,
                               experiment=args.mlflow_experiment)
            _say(f"Logged to MLflow at {args.mlflow or DEFAULT_URI}: experiment "
                 f"{args.mlflow_experiment}, run {run_id}")
