"""``gru4rec run --model`` for the baselines and ``gru4rec compare``: the original output
lines, model files of either kind, the table / JSON / plot, tuning, and the error paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gru4rec.baselines import make_baseline
from gru4rec.cli.main import main
from gru4rec.evaluation import evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "baselines"


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, list[str], str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_run_trains_a_baseline_and_prints_the_original_lines(data, capsys, tmp_path) -> None:
    code, out, err = _run(capsys, "run", data["train"], "--model", "spop", "-ps", "top_n=5",
                          "-t", data["test"], "-m", 1, 20, "-e", "conservative",
                          "-s", tmp_path / "spop.pt")
    assert code == 0, err
    assert out[0] == "SET top_n TO 5 (type: <class 'int'>)"
    assert "Started training" in out and any(line.startswith("Total training time: ")
                                             for line in out)
    model = make_baseline("spop", {"top_n": 5}).fit(data["train"])
    want = evaluate(model, data["test"], cutoffs=[1, 20], mode="conservative")
    assert [line for line in out if line.startswith("Recall@")] == want.lines()
    # the saved file loads with -l and gives the same lines
    code, again, err = _run(capsys, "run", tmp_path / "spop.pt", "-l", "-t", data["test"],
                            "-m", 1, 20, "-e", "conservative")
    assert code == 0, err
    assert [line for line in again if line.startswith("Recall@")] == want.lines()


def test_a_preset_file_names_its_model(data, capsys) -> None:
    code, out, err = _run(capsys, "run", data["train"], "-pf", CONFIGS / "sr_rsc15_100k.py",
                          "-t", data["test"])
    assert code == 0, err
    assert "SET steps TO 20 (type: <class 'int'>)" in out
    assert any(line.startswith("Model: sr (SR(") for line in out)


@pytest.mark.parametrize("argv, message", [
    (["--model", "pop", "--retrain", "x.pt"], "apply to GRU4Rec models only"),
    (["--model", "pop", "-d", "cpu"], "-d/--device apply to GRU4Rec models only"),
    (["--model", "pop", "-ps", "top_n=-1"], "pop parameter top_n"),
    (["--model", "vsknn", "-ps", "kk=3"], "unknown parameter 'kk' for vsknn"),
    (["--model", "markov", "-pf", str(CONFIGS / "sr_rsc15.py")], "is for sr"),
])
def test_run_refuses_bad_baseline_options(data, capsys, argv, message) -> None:
    code, out, err = _run(capsys, "run", data["train"], "-t", data["test"], *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not any(line.startswith("Started training") for line in out)


def test_compare_prints_a_table_and_writes_json_and_a_plot(data, capsys, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    code, out, err = _run(capsys, "compare", data["train"], data["test"], "--models", "pop",
                          "spop:top_n=5", CONFIGS / "markov_rsc15_100k.py", "-m", 5, 10,
                          "--json", tmp_path / "c.json", "--plot", tmp_path / "c.png")
    assert code == 0, err
    head = next(line for line in out if line.startswith("model"))
    assert head.split() == ["model", "Recall@5", "MRR@5", "Recall@10", "MRR@10", "train",
                            "s", "pred/s"]
    result = json.loads((tmp_path / "c.json").read_text())
    assert [m["label"] for m in result["models"]] == ["pop", "spop:top_n=5",
                                                      "markov_rsc15_100k"]
    assert result["mode"] == "conservative"
    spop = make_baseline("spop", {"top_n": 5}).fit(data["train"])
    want = evaluate(spop, data["test"], cutoffs=[5, 10], mode="conservative")
    assert result["models"][1]["metrics"] == pytest.approx(want.metrics)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_with_gru4rec_and_tuning(data, capsys, tmp_path) -> None:
    params = "gru4rec:layers=8,n_epochs=1,n_sample=8,batch_size=8"
    pytest.importorskip("optuna")
    space = CONFIGS.parent / "spaces" / "gru4rec_xe_space.json"
    code, out, err = _run(capsys, "compare", data["train"], data["test"], "--models", params,
                          "markov", "--tune", 2, "--space", space, "--json", tmp_path / "c.json")
    assert code == 0, err
    result = json.loads((tmp_path / "c.json").read_text())
    assert "Training gru4rec:layers=8,n_epochs=1,n_sample=8,batch_size=8 (tuning first)" in out
    assert any(line.startswith("  Epoch1 --> loss: ") for line in out)
    gru, markov = result["models"]
    assert gru["tuned_trials"] == markov["tuned_trials"] == 2
    assert markov["params"]["pruning"] in (0, 10, 20, 50)
    assert set(gru["params"]) > {"layers", "n_epochs"}  # the searched ones joined the given


@pytest.mark.parametrize("models, message", [
    (["vsknn:k=0"], "vsknn parameter k"),
    (["nope"], "unknown model 'nope'"),
    (["gru4rec:missing.py"], "does not exist"),
    (["gru4rec:loss=nope"], "loss"),
])
def test_compare_checks_every_model_before_training(data, capsys, models, message) -> None:
    code, out, err = _run(capsys, "compare", data["train"], data["test"], "--models", "pop",
                          *models)
    assert code == 2 and message in err and "Traceback" not in err
    assert not any(line.startswith("pop:") for line in out)


def test_gru4rec_tuning_needs_a_space(data, capsys) -> None:
    code, _, err = _run(capsys, "compare", data["train"], data["test"], "--models",
                        "gru4rec:n_epochs=1", "--tune", 2)
    assert code == 2 and "--space" in err
