"""``gru4rec run``: the original run.py output, parameter files, save/load round trips and
every error path.

Commands run in-process through ``main([...])`` on tiny synthetic data (the ``data`` fixture of
conftest.py), so each test takes about a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gru4rec.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "layers=16,n_epochs=1,n_sample=16,batch_size=8"
EPOCH_RE = re.compile(r"^Epoch1 --> loss: \d+\.\d{6} \(\d+\.\d{2}s\) "
                      r"\[\d+\.\d{2} mb/s \| \d+ e/s\]$")
# CPU, and a small negative-sample store: drawing the default 10M ids dwarfs a tiny run
FAST = ("-d", "cpu", "-ss", "20000")
METRIC_RE = r"^Recall@{k}: \d\.\d{{6}} MRR@{k}: \d\.\d{{6}}$"


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, list[str], str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def _metric_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("Recall@")]


# ----------------------------------------------------------------------------- output


def test_run_prints_the_original_lines(data: dict[str, Path], capsys) -> None:
    params = "loss=bpr-max,layers=16,n_epochs=1,batch_size=8,n_sample=16,learning_rate=0.1," \
             "constrained_embedding=False,embedding=8"
    code, out, err = _run(capsys, "run", data["train"], "-ps", params, "-t", data["test"],
                          "-m", 1, 5, 20, *FAST)
    assert code == 0, err
    assert out[:8] == [
        "SET loss TO bpr-max (type: <class 'str'>)",
        "SET layers TO [16] (type: <class 'list'>)",
        "SET n_epochs TO 1 (type: <class 'int'>)",
        "SET batch_size TO 8 (type: <class 'int'>)",
        "SET n_sample TO 16 (type: <class 'int'>)",
        "SET learning_rate TO 0.1 (type: <class 'float'>)",
        "SET constrained_embedding TO False (type: <class 'bool'>)",
        "SET embedding TO 8 (type: <class 'int'>)",
    ]
    assert out[8:11] == ["Loading training data...",
                         f"Loading data from TAB separated file: {data['train']}",
                         "Started training"]
    assert EPOCH_RE.match(out[11]), out[11]
    assert re.match(r"^Total training time: \d+\.\d{2}s$", out[12])
    assert out[13:16] == ["Loading test data...",
                          f"Loading data from TAB separated file: {data['test']}",
                          "Starting evaluation (cut-off=[1, 5, 20], using standard mode for "
                          "tiebreaking)"]
    assert re.match(r"^Evaluation took \d+\.\d{2}s$", out[16])
    for line, k in zip(out[17:], (1, 5, 20), strict=True):
        assert re.match(METRIC_RE.format(k=k), line), line
    assert "Traceback" not in err


def test_run_default_cutoff_is_20_and_eval_type_is_used(data, capsys) -> None:
    code, out, _ = _run(capsys, "run", data["train"], "-ps", TINY, "-t", data["test"],
                        "-e", "conservative", *FAST)
    assert code == 0
    assert "Starting evaluation (cut-off=[20], using conservative mode for tiebreaking)" in out
    assert [line.split(":")[0] for line in _metric_lines(out)] == ["Recall@20"]


def test_run_parameter_file_py(data, capsys, tmp_path) -> None:
    pf = tmp_path / "params.py"
    pf.write_text("from collections import OrderedDict\n"
                  "gru4rec_params = OrderedDict([('n_epochs', 1), ('layers', [16]), "
                  "('loss', 'cross-entropy'), ('logq', 1.0), ('n_sample', 16), "
                  "('batch_size', 8), ('constrained_embedding', True)])\n")
    code, out, err = _run(capsys, "run", data["train"], "-pf", pf, *FAST)
    assert code == 0, err
    assert out[:8] == [
        f"Loaded parameters from file: {pf}",
        "SET n_epochs TO 1 (type: <class 'int'>)",
        "SET layers TO [16] (type: <class 'list'>)",
        "SET loss TO cross-entropy (type: <class 'str'>)",
        "SET logq TO 1.0 (type: <class 'float'>)",
        "SET n_sample TO 16 (type: <class 'int'>)",
        "SET batch_size TO 8 (type: <class 'int'>)",
        "SET constrained_embedding TO True (type: <class 'bool'>)",
    ]
    assert any(EPOCH_RE.match(line) for line in out)
    assert not _metric_lines(out)  # no -t: no evaluation


def test_run_parameter_file_toml(data, capsys, tmp_path) -> None:
    pf = tmp_path / "params.toml"
    pf.write_text("layers = [16]\nn_epochs = 1\nn_sample = 16\nbatch_size = 8\n")
    code, out, err = _run(capsys, "run", data["train"], "-pf", pf, *FAST)
    assert code == 0, err
    assert out[1] == "SET layers TO [16] (type: <class 'list'>)"


def test_save_then_load_gives_identical_metrics(data, capsys, tmp_path) -> None:
    model = tmp_path / "model.pt"
    code, trained, err = _run(capsys, "run", data["train"], "-ps", TINY, "-s", model,
                              "-t", data["test"], "-m", 5, 20, *FAST)
    assert code == 0, err
    assert f"Saving trained model to: {model}" in trained
    assert model.is_file()
    code, loaded, err = _run(capsys, "run", model, "-l", "-t", data["test"], "-m", 5, 20,
                             *FAST)
    assert code == 0, err
    assert loaded[0] == f"Loading trained model from file: {model}"
    assert "Started training" not in loaded
    assert _metric_lines(loaded) == _metric_lines(trained)
    assert len(_metric_lines(loaded)) == 2


def test_several_test_files_and_dropped_events(data, capsys) -> None:
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY, *FAST,
                          "-t", data["test"], data["test_unknown"], "-m", 10)
    assert code == 0, err
    assert out.count("Loading test data...") == 2
    assert f"Loading data from TAB separated file: {data['test_unknown']}" in out
    assert out.count("Dropped 1 test events with items not seen in training") == 1
    assert "warning: dropped 1 test events" in err  # library warnings reach the console
    assert len(_metric_lines(out)) == 2


def test_log_primary_metric(data, capsys) -> None:
    for metric, name in (("recall", "Recall"), ("mrr", "MRR")):
        code, out, _ = _run(capsys, "run", data["train"], "-ps", TINY, *FAST,
                            "-t", data["test"], data["test_unknown"], "-m", 5, 20,
                            "-lpm", "-pm", metric)
        assert code == 0
        assert out[-1].startswith("PRIMARY METRIC: ")
        first_at_20 = _metric_lines(out)[1]  # first test file, largest cutoff
        expected = float(re.search(rf"{name}@20: (\S+)", first_at_20).group(1))
        assert float(out[-1].split(": ")[1]) == pytest.approx(expected, abs=1e-6)


def test_threads_option_is_applied_and_restored(data, capsys, monkeypatch) -> None:
    import torch

    from gru4rec.model import GRU4Rec

    seen: list[int] = []
    real_fit = GRU4Rec.fit

    def spy_fit(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(GRU4Rec, "fit", spy_fit)
    code, _, err = _run(capsys, "run", data["train"], "-ps", TINY, *FAST, "--threads", 2)
    assert code == 0, err
    assert seen == [2]
    assert torch.get_num_threads() == 1  # restored (the module fixture set 1)


def test_run_static_shapes(data, capsys) -> None:
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY, "-t", data["test"],
                          "--static_shapes", *FAST)
    assert code == 0, err
    assert any(EPOCH_RE.match(line) for line in out)
    assert len(_metric_lines(out)) == 1


def test_run_static_shapes_with_an_uncovered_configuration_is_a_clean_error(data,
                                                                            capsys) -> None:
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY + ",loss=top1-max",
                          "--static_shapes", *FAST)
    assert code == 2
    assert "static_shapes needs a configuration the hand-written step covers" in err
    assert "Traceback" not in err and not any(EPOCH_RE.match(line) for line in out)


def test_run_help_lists_the_original_flags(capsys) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("-ps", "-pf", "-l", "-s", "-t", "-m", "-e", "-ss", "--sample_store_on_cpu",
                 "--test_against_items", "-d", "-ik", "-sk", "-tk", "-pm", "-lpm"):
        assert f" {flag}" in out, flag


# ----------------------------------------------------------------------------- errors


def _assert_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: "), err
    assert all(line.startswith("  - ") for line in lines[1:]), err  # only config bullets
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.mark.parametrize(("extra", "fragments"), [
    ([], ["-ps/--parameter_string", "-l/--load_model"]),
    (["-ps", TINY, "-l"], ["cannot be used together"]),
    (["-ps", TINY, "-pf", "p.py"], ["cannot be used together"]),
    (["-ps", "layerz=16"], ["unknown parameter", "'layerz'", "valid names are", "layers"]),
    (["-ps", "n_epochs=abc"], ["n_epochs", "expected an integer"]),
    (["-ps", "constrained_embedding=yes"], ["constrained_embedding", "True or False"]),
    (["-ps", "loss=hinge"], ["loss must be one of"]),
    (["-ps", "nonsense"], ["expected name=value"]),
    (["-ps", TINY, "-e", "optimistic"], ["invalid choice", "'optimistic'"]),
    (["-ps", TINY, "-m", "0"], ["positive integer"]),
    (["-ps", TINY, "-d", "tpu9"], ["device", "tpu9"]),
    (["-ps", TINY, "-lpm"], ["needs a test file"]),
    (["-ps", TINY, "--threads", "-1"], ["--threads must be >= 0"]),
])
def test_run_errors(data, capsys, extra: list[str], fragments: list[str]) -> None:
    code, out, err = _run(capsys, "run", data["train"], *extra)
    _assert_error(code, err, *fragments)
    assert "Started training" not in out


def test_missing_training_file(data, capsys) -> None:
    missing = data["folder"] / "nope.tsv"
    code, out, err = _run(capsys, "run", missing, "-ps", TINY, *FAST)
    _assert_error(code, err, str(missing), "does not exist")
    assert "Started training" not in out


def test_missing_test_file_fails_before_training(data, capsys) -> None:
    missing = data["folder"] / "no_test.tsv"
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY, *FAST,
                          "-t", data["test"], missing)
    _assert_error(code, err, f"test file {missing} does not exist")
    assert "Started training" not in out
    assert "Loading training data..." not in out


def test_save_into_missing_folder_fails_before_training(data, capsys, tmp_path) -> None:
    target = tmp_path / "no_such_dir" / "model.pt"
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY, *FAST, "-s", target)
    _assert_error(code, err, "does not exist", "no_such_dir")
    assert "Started training" not in out


def test_load_a_file_that_is_not_a_model(data, capsys) -> None:
    code, _, err = _run(capsys, "run", data["train"], "-l", "-t", data["test"], *FAST)
    _assert_error(code, err, "not a readable gru4rec model file")


@pytest.mark.parametrize("name", ["missing.py", "params.json"])
def test_bad_parameter_file(data, capsys, tmp_path, name: str) -> None:
    pf = tmp_path / name
    if name.endswith(".json"):
        pf.write_text("{}")
    code, out, err = _run(capsys, "run", data["train"], "-pf", pf, *FAST)
    _assert_error(code, err, str(pf))
    assert "Started training" not in out


# ----------------------------------------------------------------------------- retraining


@pytest.fixture(scope="module")
def saved(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A model trained with TINY (full and --slim files) and a log with 5 new items."""
    folder = tmp_path_factory.mktemp("retrain")
    paths = {"full": folder / "full.pt", "slim": folder / "slim.pt",
             "new": folder / "new.tsv"}
    for kind in ("full", "slim"):
        argv = ["run", data["train"], "-ps", TINY, *FAST, "-s", paths[kind]]
        assert main([str(a) for a in argv + (["--slim"] if kind == "slim" else [])]) == 0
    lines = data["train"].read_text().splitlines()
    header, rows = lines[0], lines[1:]
    new_rows = [row.replace("\t", "\t10", 1) if i % 7 == 0 and i < 35 else row
                for i, row in enumerate(rows)]  # item x -> 10x in some events: new items
    assert header.split("\t")[1] == "ItemId"
    paths["new"].write_text("\n".join([header, *new_rows]) + "\n")
    return paths


def test_retrain_continues_a_saved_model_with_new_items(data, saved, capsys,
                                                         tmp_path) -> None:
    from gru4rec import GRU4Rec

    before = GRU4Rec.load(saved["full"])
    out_model = tmp_path / "m2.pt"
    code, out, err = _run(capsys, "run", saved["new"], "--retrain", saved["full"],
                          "-ps", "n_epochs=2,learning_rate=0.05", *FAST, "-s", out_model,
                          "-t", data["test"])
    assert code == 0, err
    assert out[:3] == [f"Loading trained model from file: {saved['full']}",
                       "SET n_epochs TO 2 (type: <class 'int'>)",
                       "SET learning_rate TO 0.05 (type: <class 'float'>)"]
    assert "Started retraining" in out
    assert len([line for line in out if line.startswith("Epoch")]) == 2
    after = GRU4Rec.load(out_model)
    n_new = after.n_items - before.n_items
    assert n_new > 0 and f"Items: {after.n_items} ({n_new} new)" in out
    assert after.optimizer_state_ is not None
    assert (after.config.n_epochs, after.config.layers) == (2, before.config.layers)
    assert len(_metric_lines(out)) == 1


def test_retrain_from_a_slim_file_says_the_optimiser_starts_afresh(saved, capsys,
                                                                    tmp_path) -> None:
    from gru4rec import GRU4Rec

    assert GRU4Rec.load(saved["slim"]).optimizer_state_ is None
    assert saved["slim"].stat().st_size < 0.7 * saved["full"].stat().st_size
    code, out, err = _run(capsys, "run", saved["new"], "--retrain", saved["slim"], *FAST)
    assert code == 0, err
    assert f"{saved['slim']} has no optimiser state (saved with --slim): the optimiser " \
           "starts afresh" in out


@pytest.mark.parametrize(("extra", "fragments"), [
    (["-ps", "layers=8"], ["cannot change: layers ((16,) -> (8,))", "train a new model"]),
    (["-ps", "n_epochs=1", "-pf", "p.py"], ["cannot be used together"]),
    (["-l"], ["--retrain trains the model it loads"]),
])
def test_retrain_errors(saved, capsys, extra: list[str], fragments: list[str]) -> None:
    code, out, err = _run(capsys, "run", saved["new"], "--retrain", saved["full"], *FAST,
                          *extra)
    _assert_error(code, err, *fragments)
    assert "Started retraining" not in out and "Loading training data..." not in out


@pytest.mark.parametrize(("extra", "fragments"), [
    (["--retrain", "missing.pt"], ["model file missing.pt does not exist", "--retrain"]),
    (["-ps", TINY, "--fresh_optimizer"], ["--fresh_optimizer applies to --retrain only"]),
    (["-ps", TINY, "--slim"], ["--slim applies to -s/--save_model"]),
])
def test_retrain_option_errors_come_before_any_work(data, capsys, extra: list[str],
                                                    fragments: list[str]) -> None:
    code, out, err = _run(capsys, "run", data["train"], *FAST, *extra)
    _assert_error(code, err, *fragments)
    assert out == []


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoints_and_resume_from_the_command_line(data, capsys, tmp_path) -> None:
    folder = tmp_path / "ckpt"
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY.replace("n_epochs=1",
                          "n_epochs=2"), *FAST, "--checkpoint_dir", folder,
                          "--keep_checkpoints", 1)
    assert code == 0, err
    assert [p.name for p in folder.iterdir()] == ["epoch-0002.ckpt"]
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY.replace("n_epochs=1",
                          "n_epochs=3"), *FAST, "--checkpoint_dir", folder, "--resume")
    assert code == 0, err
    assert [line.split(" ")[0] for line in out if line.startswith("Epoch")] == ["Epoch3"]
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY + ",learning_rate=0.3",
                          *FAST, "--checkpoint_dir", folder, "--resume")
    _assert_error(code, err, "was written with other hyperparameters", "learning_rate")


@pytest.mark.parametrize(("extra", "fragments"), [
    (["--resume"], ["--resume needs --checkpoint_dir DIR"]),
    (["--checkpoint_dir", "FILE"], ["is a file; give a folder"]),
    (["--keep_checkpoints", "0"], ["positive integer"]),
])
def test_checkpoint_option_errors_come_before_any_work(data, capsys, extra: list[str],
                                                       fragments: list[str]) -> None:
    extra = [str(data["train"]) if a == "FILE" else a for a in extra]
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY, *FAST, *extra)
    _assert_error(code, err, *fragments)
    assert out == []


# ----------------------------------------------------------------------------- users


@pytest.fixture(scope="module")
def user_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train/test TSVs of returning users, with a UserId column."""
    from gru4rec.data.synthetic import make_user_sessions, train_test_split_last

    folder = tmp_path_factory.mktemp("users")
    train, test = train_test_split_last(make_user_sessions(60, 40, seed=2), 0.2)
    out = {}
    for name, ev in (("train", train), ("test", test)):
        rows = ["SessionId\tItemId\tTime\tUserId"] + [
            f"{s}\t{i}\t{t!r}\t{u}" for s, i, t, u in zip(
                ev.session.tolist(), ev.item.tolist(), ev.time.tolist(),
                ev.user.tolist(), strict=True)]  # type: ignore[union-attr]
        out[name] = folder / f"{name}.tsv"
        out[name].write_text("\n".join(rows) + "\n")
    return out


def test_sequence_aware_training_and_evaluation_from_the_users_states(
        user_data, capsys, tmp_path) -> None:
    model = tmp_path / "m.pt"
    code, lines, err = _run(capsys, "run", user_data["train"], "-ps",
                            f"{TINY},session_boundary=carry,bptt=3", "-uk", "UserId", "-t",
                            user_data["test"], "--continue_state", "-s", model, *FAST)
    assert code == 0, err
    assert ("Starting evaluation (cut-off=[20], using standard mode for tiebreaking, each "
            "user from their training state)") in lines
    carried = _metric_lines(lines)
    # the saved model keeps the users' states: loading it measures the same
    code, lines, err = _run(capsys, "run", model, "-l", "-uk", "UserId", "-t",
                            user_data["test"], "--continue_state", *FAST)
    assert code == 0, err
    assert _metric_lines(lines) == carried
    code, lines, err = _run(capsys, "run", model, "-l", "-t", user_data["test"], *FAST)
    assert code == 0 and _metric_lines(lines) != carried  # from zero states


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--continue_state"], "--continue_state needs the user column: give -uk/--user_key"),
    (["-ps", f"{TINY},session_boundary=carry"], "give the user column with -uk/--user_key"),
    (["-uk", "Visitor"], "missing column(s) 'Visitor'"),
])
def test_user_option_errors(user_data, capsys, extra: list[str], fragment: str) -> None:
    argv = ["run", user_data["train"], *(["-ps", TINY] if "-ps" not in extra else []), *extra,
            "-t", user_data["test"], *FAST]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and fragment in err and "Traceback" not in err


def test_json_prints_one_object_and_moves_the_lines_to_stderr(data, capsys, tmp_path) -> None:
    import json

    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY, "-t", data["test"],
                          data["test_unknown"], "-m", 5, 20, "--json", *FAST)
    assert code == 0, err
    assert len(out) == 1  # stdout holds the JSON object only
    result = json.loads(out[0])
    assert result["model"] == "gru4rec" and result["params"]["layers"] == [16]
    assert [t["path"] for t in result["tests"]] == [str(data["test"]), str(data["test_unknown"])]
    assert result["tests"][1]["n_dropped_events"] == 1
    lines = [line for line in err.splitlines() if line.startswith("Recall@")]
    assert lines[:2] == [f"Recall@{k}: {result['tests'][0]['metrics'][f'Recall@{k}']:.6f} "
                         f"MRR@{k}: {result['tests'][0]['metrics'][f'MRR@{k}']:.6f}"
                         for k in (5, 20)]
    assert "Started training" in err and result["train_seconds"] > 0


def test_json_works_for_a_baseline_and_refuses_lpm(data, capsys) -> None:
    import json

    code, out, err = _run(capsys, "run", data["train"], "--model", "pop", "-t", data["test"],
                          "--json")
    assert code == 0, err
    result = json.loads(out[0])
    assert result["model"] == "pop" and result["params"]["top_n"] == 100
    code, _, err = _run(capsys, "run", data["train"], "-ps", TINY, "-t", data["test"],
                        "--json", "-lpm")
    assert code == 2 and "drop -lpm" in err


def test_valid_prints_the_value_per_epoch_and_keeps_the_best(data, capsys, tmp_path) -> None:
    code, out, err = _run(capsys, "run", data["train"], "-ps",
                          "layers=16,n_epochs=4,n_sample=16,batch_size=8", "--valid",
                          data["test"], "-pm", "mrr", "-m", 5, *FAST, "-s", tmp_path / "m.pt")
    assert code == 0, err
    epochs = [line for line in out if line.startswith("Epoch")]
    assert len(epochs) == 4 and all(" | valid MRR@5: " in line for line in epochs)
    values = [float(line.rsplit(": ", 1)[1]) for line in epochs]
    best = next(line for line in out if line.startswith("Best epoch: "))
    epoch = values.index(max(values)) + 1
    assert best.startswith(f"Best epoch: {epoch} (valid MRR@5: {max(values):.6f})")
    # the saved model is the best epoch's: measured again, the same value
    code, out, err = _run(capsys, "run", tmp_path / "m.pt", "-l", "-t", data["test"],
                          "-m", 5, "-d", "cpu")
    assert out[-1].endswith(f"MRR@5: {max(values):.6f}")


@pytest.mark.parametrize("extra, message", [
    (["-ps", TINY, "--patience", "2"], "apply to --valid"),
    (["--model", "pop", "--valid", "x.tsv"], "--valid apply to GRU4Rec models only"),
])
def test_valid_options_are_checked(data, capsys, extra, message) -> None:
    code, _, err = _run(capsys, "run", data["train"], *extra)
    assert code == 2 and message in err
