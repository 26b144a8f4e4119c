"""Hyperparameter optimisation (gru4rec.tuning): parameter spaces and their errors, trials
in process with pruning, a stored study resumed after a kill, and two workers sharing one
SQLite study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from gru4rec.errors import ConfigError

optuna = pytest.importorskip("optuna", reason="the tune extra is not installed")
import sqlalchemy.exc  # noqa: E402  (optuna's dependency)

from gru4rec.tuning import read_space, space_from, tune  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXED = {"loss": "cross-entropy", "n_epochs": "2", "batch_size": "16", "n_sample": "8"}
SPACE = [{"name": "learning_rate", "dtype": "float", "values": [0.02, 0.3], "step": 0.02},
         {"name": "layers", "dtype": "int", "values": [8, 32], "step": 8}]


def write_tsv(events, path: Path) -> Path:
    rows = "".join(f"{s}\t{i}\t{t}\n" for s, i, t in
                   zip(events.session.tolist(), events.item.tolist(), events.time.tolist(),
                       strict=True))
    path.write_text("SessionId\tItemId\tTime\n" + rows)
    return path


@pytest.fixture(scope="module")
def split():
    """(train, valid) of a small synthetic log: 200 items, 800 / 200 sessions."""
    from gru4rec.data.events import Events
    from gru4rec.data.synthetic import make_sessions

    ev = make_sessions(n_items=200, n_sessions=1000, mean_length=5.0, seed=0)
    cut = ev.session < np.unique(ev.session)[800]
    return (Events(ev.session[cut], ev.item[cut], ev.time[cut]),
            Events(ev.session[~cut], ev.item[~cut], ev.time[~cut]))


def finished(study) -> list:
    return [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]


# ----------------------------------------------------------------------------- spaces


@pytest.mark.parametrize(("name", "fixed"), [
    ("gru4rec_bprmax_space.json", {"loss": "bpr-max"}),
    ("gru4rec_xe_space.json", {"loss": "cross-entropy", "logq": "1.0"})])
def test_the_shipped_spaces_are_the_official_ones(name: str, fixed: dict) -> None:
    space = read_space(ROOT / "configs" / "spaces" / name, fixed)
    got = {p.name: (p.dtype, p.values, p.step) for p in space}
    assert got["layers"] == ("int", (64, 512), 32)
    assert got["batch_size"] == ("int", (32, 256), 16)
    assert got["learning_rate"] == ("float", (0.01, 0.25), 0.005)
    assert got["dropout_p_hidden"] == ("float", (0.0, 0.7), 0.05)
    assert got["sample_alpha"] == ("float", (0.0, 1.0), 0.1)
    assert ("bpreg" in got) == (name == "gru4rec_bprmax_space.json")
    first = (ROOT / "configs" / "spaces" / name).read_text().splitlines()[0]
    assert first.startswith("# gru4rec tune ") and f"-opf configs/spaces/{name}" in first


def test_a_toml_space_reads_like_the_json_one(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(textwrap.dedent("""
        [learning_rate]
        dtype = "float"
        values = [0.02, 0.3]
        step = 0.02
        [layers]
        dtype = "int"
        values = [8, 32]
        step = 8
        [final_act]
        dtype = "categorical"
        values = ["softmax", "tanh"]
        """))
    space = read_space(tmp_path / "s.toml", FIXED)
    assert [p.name for p in space] == ["learning_rate", "layers", "final_act"]
    assert space[2].values == ("softmax", "tanh") and space[1].step == 8


def test_a_bad_space_gets_one_error_listing_every_problem(tmp_path: Path) -> None:
    lines = ['{"name": "layerz", "dtype": "int", "values": [1, 2]}',
             '{"name": "learning_rate", "dtype": "float", "values": [0.3, 0.1]}',
             '{"name": "momentum", "dtype": "double", "values": [0, 1]}',
             '{"name": "loss", "dtype": "categorical", "values": ["bpr-max", "hinge"]}',
             '{"name": "batch_size", "dtype": "int", "values": [16, 64], "stepp": 2}',
             '{"name": "n_sample", "dtype": "int", "values": [0, 64]}',
             '{"name": "layers", "dtype": "int", "values": [8, 32], "step": 0}']
    path = tmp_path / "bad.json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as err:
        read_space(path, {"n_sample": "8"})
    text = str(err.value)
    for needle in ("unknown parameter 'layerz'", "[0.3, 0.1] is empty",
                   "dtype must be int, float or categorical, got 'double'",
                   "value 'hinge' is not valid", "unknown key(s) stepp",
                   "n_sample is also a fixed parameter", "step must be a positive number"):
        assert needle in text, needle
    assert len(err.value.problems) == 7
    path.write_text("not json\n")
    with pytest.raises(ConfigError, match="line 1 is not a JSON object"):
        read_space(path)
    with pytest.raises(ConfigError, match="log scale needs low > 0"):
        space_from([{"name": "learning_rate", "dtype": "float", "values": [0, 1],
                     "log": True}])


# ----------------------------------------------------------------------------- trials


def test_trials_run_in_process_and_hopeless_ones_are_pruned(split) -> None:
    seen: list = []
    study = tune(*split, space_from(SPACE, FIXED), fixed=FIXED,
                 n_trials=10, pruner="median", sampler_seed=0, sample_store_size=10_000,
                 on_trial=seen.append)
    states = [t.state.name for t in study.trials]
    assert len(finished(study)) == 10 and len(seen) == 10
    assert "PRUNED" in states  # the first 5 set the median, later ones below it stop
    for t in study.trials:
        assert 0.02 <= t.params["learning_rate"] <= 0.3 and t.params["layers"] in (8, 16, 24,
                                                                                    32)
        if t.state.name == "COMPLETE":
            assert t.value == t.user_attrs["recall"] and 0 < t.value <= 1
            assert t.user_attrs["epochs"] == 2
            # checked an eighth, a quarter and a half into the first epoch, then after each epoch
            assert sorted(t.intermediate_values) == [125, 250, 500, 1000, 2000]
        else:  # pruned at one of the checks before the last epoch ended
            assert t.user_attrs["epochs"] in (0.125, 0.25, 0.5, 1)
            assert max(t.intermediate_values) == round(1000 * t.user_attrs["epochs"])
    assert seen[-1].finished == 10 and study.best_value == max(
        t.value for t in study.trials if t.state.name == "COMPLETE")
    assert {d.epochs for d in seen if d.state == "PRUNED"} & {0.125, 0.25, 0.5}  # early ones save


def test_the_median_pruner_compares_with_the_recent_completed_trials() -> None:
    from gru4rec.tuning.pruning import RecentMedianPruner

    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}

    def trial(curve: dict[int, float], state: str = "COMPLETE") -> object:
        return optuna.trial.create_trial(
            state=optuna.trial.TrialState[state], params={"x": 0.5}, distributions=dist,
            value=curve[max(curve)] if state == "COMPLETE" else None,
            intermediate_values=curve)

    study = optuna.create_study(direction="maximize")
    pruner = RecentMedianPruner(window=3, n_startup=2)
    assert not pruner.prune(study, trial({100: 0.0}, "RUNNING"))  # nothing to compare with
    study.add_trial(trial({100: 0.1, 200: 0.2}))
    assert not pruner.prune(study, trial({100: 0.0}, "RUNNING"))  # 1 < n_startup complete
    for early in (0.2, 0.6, 0.7, 0.8):  # the old 0.1 and 0.2 fall out of the window of 3
        study.add_trial(trial({100: early, 200: early + 0.1}))
    assert pruner.prune(study, trial({100: 0.65}, "RUNNING"))  # median of 0.6-0.8: 0.7
    assert not pruner.prune(study, trial({100: 0.7}, "RUNNING"))  # not below it
    assert not pruner.prune(study, trial({100: 0.85, 200: 0.5}, "RUNNING"))  # its best counts
    assert pruner.prune(study, trial({100: float("nan")}, "RUNNING"))
    assert not pruner.prune(study, trial({150: 0.0}, "RUNNING"))  # no trial reported there
    # optuna's MedianPruner keeps the first trials' low values in its median (0.6)
    assert not optuna.pruners.MedianPruner(n_startup_trials=2).prune(
        study, trial({100: 0.65}, "RUNNING"))
    with pytest.raises(ValueError, match="window and n_startup must be >= 1"):
        RecentMedianPruner(window=0)


def test_without_early_points_the_pruner_looks_after_each_epoch_only(split) -> None:
    seen: list = []
    study = tune(*split, SPACE, fixed=FIXED, n_trials=8, pruner="median", sampler_seed=0,
                 sample_store_size=10_000, prune_early=(), on_epoch=seen.append)
    assert {e.epoch for e in seen} == {1, 2}
    for t in study.trials:
        assert set(t.intermediate_values) <= {1000, 2000}
        assert t.user_attrs["epochs"] == (2 if t.state.name == "COMPLETE" else 1)


def test_hyperband_stops_trials_after_an_epoch_and_none_never_does(split) -> None:
    fixed = {**FIXED, "n_epochs": "3"}
    for pruner, want_pruned in (("hyperband", True), ("none", False)):
        study = tune(*split, SPACE, fixed=fixed, n_trials=12, pruner=pruner, sampler_seed=0,
                     sample_store_size=10_000)
        pruned = [t for t in study.trials if t.state.name == "PRUNED"]
        assert len(finished(study)) == 12 and bool(pruned) == want_pruned
        assert all(t.user_attrs["epochs"] < 3 for t in pruned)
        assert all(t.user_attrs["epochs"] == 3 for t in study.trials
                   if t.state.name == "COMPLETE")


def test_a_space_file_or_dicts_work_as_the_space(split, tmp_path: Path) -> None:
    path = tmp_path / "space.json"
    path.write_text("".join(json.dumps(entry) + "\n" for entry in SPACE))
    for space in (path, str(path), SPACE):
        study = tune(*split, space, fixed=FIXED, n_trials=1, pruner="none",
                     sample_store_size=10_000)
        assert set(study.trials[0].params) == {"learning_rate", "layers"}
    with pytest.raises(ConfigError, match="learning_rate is also a fixed parameter"):
        tune(*split, SPACE, fixed={**FIXED, "learning_rate": "0.1"}, n_trials=1)


def _subnormal_survives() -> bool:
    import torch

    return (torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() != 0.0


def test_bad_options_and_storage_are_refused_before_the_data_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "no_such.tsv"  # never read: the options fail first
    with pytest.raises(ConfigError, match="pruner must be one of median, hyperband, none"):
        tune(missing, missing, SPACE, fixed=FIXED, pruner="asha")
    with pytest.raises(ConfigError, match="cannot open the study storage"):
        tune(missing, missing, SPACE, fixed=FIXED, storage="nosuchdb://x/y")
    for early in ((0.5, 1.0), (0.0,), (0.3, 0.3001)):
        with pytest.raises(ConfigError, match="prune_early takes fractions of the first"):
            tune(missing, missing, SPACE, fixed=FIXED, prune_early=early)


def test_subnormals_are_flushed_while_trials_train_and_restored_after(split) -> None:
    import torch

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormals")
    seen: list[bool] = []
    tune(*split, SPACE, fixed=FIXED, n_trials=1, pruner="none", sample_store_size=10_000,
         on_epoch=lambda e: seen.append(_subnormal_survives()))
    assert seen == [False, False]  # flushed during both epochs of the trial
    assert _subnormal_survives()  # PyTorch's default again


def test_a_stored_study_continues_where_it_stopped(split, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    space = [{"name": "learning_rate", "dtype": "float", "values": [0.02, 0.3]}]
    kw = {"fixed": FIXED, "storage": url, "study_name": "s", "pruner": "none",
          "sample_store_size": 10_000, "sampler_seed": 0}
    first = tune(*split, space, n_trials=3, **kw)
    best = (first.best_value, first.best_trial.number)
    seen: list = []
    study = tune(*split, space, n_trials=5, on_trial=seen.append, **kw)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert len(finished(study)) == 5
    # the same sampler seed does not replay the first run's suggestions
    rates = [t.params["learning_rate"] for t in study.trials]
    assert len(set(rates)) == 5
    # the rerun's lines know the best of the first run
    assert seen[0].finished == 4 and seen[0].best is not None and seen[0].best >= best
    assert seen[-1].best == (study.best_value, study.best_trial.number)
    again = tune(*split, space, n_trials=5, **kw)
    assert len(again.trials) == 5  # nothing left to do


def test_a_trial_left_running_before_its_first_heartbeat_is_failed_and_replaced(
        split, tmp_path: Path, monkeypatch) -> None:
    import threading

    from gru4rec.tuning import study as study_module

    url = f"sqlite:///{tmp_path / 'study.db'}"
    # a worker that died right after creating its trial: RUNNING, no heartbeat ever
    optuna.create_study(storage=url, study_name="s", direction="maximize").ask()
    monkeypatch.setattr(study_module, "GRACE_SECONDS", 1)  # seconds before it is failed
    done: list = []
    worker = threading.Thread(target=lambda: done.append(tune(
        *split, SPACE, fixed=FIXED, n_trials=1, storage=url, study_name="s", pruner="none",
        sample_store_size=10_000, wait_poll=0.1)), daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "the study waited for the dead worker's trial"
    states = [t.state.name for t in done[0].trials]
    assert states == ["FAIL", "COMPLETE"]
    assert done[0].trials[1].user_attrs["worker"].endswith(f":{os.getpid()}")


WORKER = """
import sys
import optuna
from gru4rec.tuning import study as tuning
from gru4rec.tuning import read_space, tune
optuna.logging.set_verbosity(optuna.logging.WARNING)
tuning.HEARTBEAT_SECONDS, tuning.GRACE_SECONDS = int(sys.argv[8]), int(sys.argv[9])
fixed = {"loss": "cross-entropy", "n_epochs": sys.argv[5], "batch_size": "16",
         "n_sample": "8"}
tune(sys.argv[1], sys.argv[2], read_space(sys.argv[3], fixed), fixed=fixed,
     n_trials=int(sys.argv[4]), storage=sys.argv[6], study_name="shared", pruner="none",
     sample_store_size=10_000, sampler_seed=int(sys.argv[7]), wait_poll=0.2)
"""


@pytest.fixture
def files(split, tmp_path: Path) -> dict[str, Path]:
    space = tmp_path / "space.json"
    space.write_text('{"name": "learning_rate", "dtype": "float", "values": [0.02, 0.3]}\n')
    return {"train": write_tsv(split[0], tmp_path / "train.tsv"),
            "valid": write_tsv(split[1], tmp_path / "valid.tsv"), "space": space,
            "worker": tmp_path / "worker.py", "db": tmp_path / "study.db"}


_SPAWNED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test():
    yield
    while _SPAWNED:
        proc = _SPAWNED.pop()
        if proc.poll() is None:  # a failed test: the worker may still be waiting
            proc.kill()
            proc.wait(30)


def start_worker(files: dict[str, Path], n_trials: int, epochs: int, seed: int,
                 heartbeat: tuple[int, int] = (5, 20)) -> subprocess.Popen:
    files["worker"].write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    _SPAWNED.append(proc := subprocess.Popen(
        [sys.executable, str(files["worker"]), str(files["train"]), str(files["valid"]),
         str(files["space"]), str(n_trials), str(epochs), f"sqlite:///{files['db']}",
         str(seed), *map(str, heartbeat)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE))
    return proc


def load(files: dict[str, Path]):
    return optuna.load_study(study_name="shared", storage=f"sqlite:///{files['db']}")


@pytest.mark.slow
def test_two_workers_on_one_sqlite_file_finish_exactly_n_trials(files) -> None:
    workers = [start_worker(files, 12, 2, seed) for seed in (1, 2)]
    for w in workers:
        assert w.wait(300) == 0, w.stderr.read().decode()  # type: ignore[union-attr]
    study = load(files)
    done = finished(study)
    assert len(done) == 12 and len({t.number for t in done}) == 12
    counted = [t for t in study.trials if not t.user_attrs.get("surplus")]
    assert len(counted) == 12  # none duplicated, none lost (surplus ones are not trials)
    assert len({t.datetime_start for t in done}) == 12


@pytest.mark.slow
def test_a_worker_killed_mid_study_is_continued_by_a_rerun(files) -> None:
    worker = start_worker(files, 8, 6, 1)  # 6 epochs: trials last long enough to be hit
    deadline = time.monotonic() + 300
    while True:
        assert time.monotonic() < deadline and worker.poll() is None
        if files["db"].exists():
            try:
                study = load(files)
                if len(finished(study)) >= 2 and any(t.state.name == "RUNNING"
                                                     for t in study.trials):
                    break
            except (KeyError, optuna.exceptions.StorageInternalError,
                    sqlalchemy.exc.SQLAlchemyError):
                pass  # the worker is creating the study (its tables, alembic's stamp)
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait(30)
    before = len(finished(load(files)))
    # the rerun (a short grace, to keep the test short): the killed worker's trial counts as
    # failed once its heartbeats stop
    rerun = start_worker(files, 8, 6, 3, heartbeat=(1, 3))
    assert rerun.wait(300) == 0, rerun.stderr.read().decode()  # type: ignore[union-attr]
    study = load(files)
    states = [t.state.name for t in study.trials]
    assert len(finished(study)) == 8 and before >= 2
    assert states.count("FAIL") <= 1  # at most the trial in flight was lost
    assert np.all(np.diff([t.number for t in study.trials]) == 1)
