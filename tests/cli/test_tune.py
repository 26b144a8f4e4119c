"""``gru4rec tune``: the original paropt.py flags and lines, the files it writes (a
parameter file that ``gru4rec run -pf`` takes, the trial table, plots), a rerun that
continues the stored study, and its usage errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from gru4rec.cli.main import main
from gru4rec.params import parse_param_file

pytest.importorskip("optuna", reason="the tune extra is not installed")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIXED = "loss=cross-entropy,n_epochs=2,batch_size=8,n_sample=16"


@pytest.fixture
def space(tmp_path: Path) -> Path:
    path = tmp_path / "space.json"
    path.write_text('# a comment line\n'
                    '{"name": "learning_rate", "dtype": "float", "values": [0.05, 0.3], '
                    '"step": 0.05}\n{"name": "layers", "dtype": "int", "values": [8, 24], '
                    '"step": 8}\n')
    return path


def tune(data: dict[str, Path], space: Path, out: Path, *extra: str) -> list[str]:
    return [str(data["train"]), str(data["test"]), "-opf", str(space), "-fp", FIXED,
            "-o", str(out), "-d", "cpu", "-ss", "20000", *extra]


def test_tune_writes_the_best_parameters_the_trials_and_plots(data, space, tmp_path: Path,
                                                              capsys) -> None:
    out = tmp_path / "out"
    assert main(["tune", *tune(data, space, out, "-nt", "4", "-fm", "5", "10")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "PARAMETER SPACE" in lines
    assert any(line.startswith("\tPARAMETER layers \t type=int \t range=[8..24] (step=8)")
               for line in lines)
    trials = [line for line in lines if re.match(r"\[\d/4\] trial \d (recall@20 =|pruned)", line)]
    assert len(trials) == 4 and trials[-1].startswith("[4/4] trial 3 ")
    assert "| best " in trials[-1] and "learning_rate=" in trials[-1]
    epochs = [line for line in lines if re.match(r"\[\d/4\] trial \d epoch [0-9.]+/2:", line)]
    # the pruning values: 1/8, 1/4 and 1/2 into the first epoch, then after each epoch
    assert [line.split(":")[0] for line in epochs[:5]] == [
        f"[1/4] trial 0 epoch {e}/2" for e in ("0.125", "0.25", "0.5", "1", "2")]
    assert epochs[0].startswith("[1/4] trial 0 epoch 0.125/2: recall@20 0.")
    assert any(re.match(r"the pruner compares recall@20 after each epoch and at 0.125, 0.25 "
                        r"and 0.5 of the first on the whole validation set \([0-9,]+ events\)$",
                        line) for line in lines)
    final = lines.index("Running final eval @[5, 10]:")
    assert lines[final + 1].startswith("Epoch1 --> loss: ")
    assert lines[-2].startswith("Recall@5: ") and lines[-1].startswith("Recall@10: ")
    params = parse_param_file(out / "best_params.py")
    assert list(params) == ["loss", "n_epochs", "batch_size", "n_sample", "learning_rate",
                            "layers"]
    assert params["loss"] == "cross-entropy" and params["layers"] in ([8], [16], [24])
    with open(out / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED", "FAIL"}
    assert len(json.loads((out / "trials.json").read_text())) == 4
    for name in ("optimization_history", "param_importances", "slice"):
        assert (out / f"{name}.html").stat().st_size > 0
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "study.db").is_file()
    # the parameter file is ready to run
    assert main(["run", str(data["train"]), "-pf", str(out / "best_params.py"), "-t",
                 str(data["test"]), "-d", "cpu", "-ss", "20000"]) == 0
    # rerunning the command with more trials continues the stored study
    assert main(["tune", *tune(data, space, out, "-nt", "6", "--no_final")]) == 0
    again = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in again
            if re.match(r"\[\d/6\] trial \d (recall@20 =|pruned)", line)] == ["[5/6]", "[6/6]"]


def test_the_cli_defaults_are_the_library_ones() -> None:
    import argparse

    from gru4rec.cli import tune as cli
    from gru4rec.tuning import PRUNE_EARLY, PRUNERS

    parser = cli.add_parser(argparse.ArgumentParser().add_subparsers())
    actions = {a.dest: a for a in parser._actions}
    assert tuple(actions["pruner"].choices) == PRUNERS
    assert actions["prune_early"].default == PRUNE_EARLY
    assert cli._fractions("none") == ()


def test_tune_usage_errors(data, space, tmp_path: Path, capsys, monkeypatch) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "layerz", "dtype": "int", "values": [8, 4]}\n'
                   '{"name": "learning_rate", "dtype": "float", "values": [0.3, 0.1]}\n')
    assert main(["tune", *tune(data, bad, tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'layerz'" in err and "[0.3, 0.1] is empty" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()
    assert main(["tune", str(data["train"]), str(tmp_path / "none.tsv"), "-opf",
                 str(space)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["tune", *tune(data, space, tmp_path / "o"), "-d", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "tpu" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "study.db").exists()  # refused before any study or trial
    for early, message in (("0.5,1.5", "prune_early takes fractions of the first epoch"),
                           ("half", "expected comma-separated fractions like 0.25,0.5")):
        assert main(["tune", *tune(data, space, tmp_path / "o"), "--prune_early",
                     early]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not (tmp_path / "o" / "study.db").exists()
    import builtins

    real = builtins.__import__

    def no_optuna(name: str, *args: object, **kwargs: object):
        if name == "optuna":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    assert main(["tune", *tune(data, space, tmp_path / "o")]) == 2
    assert 'pip install "gru4rec[tune]"' in capsys.readouterr().err
