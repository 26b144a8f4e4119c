"""``gru4rec run --report DIR``: metrics.json valid against its schema and consistent with
what the run printed, and the plots."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gru4rec.cli.main import main
from gru4rec.reports import load_schema

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = "layers=16,n_epochs=3,n_sample=16,batch_size=8"


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, list[str], str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def _validate(report: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(report, load_schema())


def test_a_report_holds_every_metric_epoch_and_the_model_file(data, capsys, tmp_path) -> None:
    folder, model = tmp_path / "run", tmp_path / "m.pt"
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY, "-t", data["test"],
                          data["test_unknown"], "-m", 1, 5, "--valid", data["test"],
                          "--report", folder, "-s", model, "-d", "cpu", "-ss", 20000)
    assert code == 0, err
    report = json.loads((folder / "metrics.json").read_text())
    _validate(report)
    assert report["model"] == "gru4rec" and report["config"]["layers"] == [16]
    assert report["command"][:3] == ["gru4rec", "run", str(data["train"])]
    # the metrics are the ones printed, for both test files
    printed = [line for line in out if line.startswith("Recall@")]
    assert printed == [f"Recall@{k}: {r['metrics'][f'Recall@{k}']:.6f} "
                       f"MRR@{k}: {r['metrics'][f'MRR@{k}']:.6f}"
                       for r in report["results"] for k in (1, 5)]
    assert [t["dropped_events"] for t in report["data"]["tests"]] == [0, 1]
    train = report["data"]["train"]
    assert train["path"] == str(data["train"]) and train["events"] > train["sessions"] > 0
    # one entry per epoch, with the validation value printed on its line
    epochs = [line for line in out if line.startswith("Epoch")]
    assert [e["epoch"] for e in report["epochs"]] == [1, 2, 3]
    assert [f"{e['valid']:.6f}" for e in report["epochs"]] == \
        [line.rsplit(": ", 1)[1] for line in epochs]
    assert report["validation"]["metric"] == "Recall@5"
    assert report["model_file"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    pytest.importorskip("matplotlib")
    for name in ("training", "metrics", "validation"):
        assert (folder / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (folder / f"{name}.svg").read_bytes()[:500]


def test_a_baseline_run_reports_too(data, capsys, tmp_path) -> None:
    code, _, err = _run(capsys, "run", data["train"], "--model", "spop", "-t", data["test"],
                        "--report", tmp_path / "spop")
    assert code == 0, err
    report = json.loads((tmp_path / "spop" / "metrics.json").read_text())
    _validate(report)
    assert report["model"] == "spop" and report["epochs"] == []
    assert report["config"]["top_n"] == 100 and report["model_file"] is None
    assert not (tmp_path / "spop" / "training.png").exists()


def test_report_refuses_a_file_before_training(data, capsys, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, out, err = _run(capsys, "run", data["train"], "-ps", TINY, "--report",
                          tmp_path / "file")
    assert code == 2 and "is a file; give a folder" in err
    assert "Started training" not in out


@pytest.fixture(scope="module")
def three_runs(data, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("runs")
    runs = [(folder / "small", ["-ps", "layers=8,n_epochs=1,n_sample=8,batch_size=8"]),
            (folder / "wide", ["-ps", "layers=24,n_epochs=1,n_sample=8,batch_size=8"]),
            (folder / "spop", ["--model", "spop"])]
    for path, how in runs:
        assert main([str(a) for a in ("run", data["train"], *how, "-t", data["test"],
                                      "-m", 5, 20, "--report", path, "-ss", 20000)]) == 0
    return [path for path, _ in runs]


def test_report_prints_the_runs_side_by_side(three_runs, capsys) -> None:
    code, out, err = _run(capsys, "report", *three_runs)
    assert code == 0, err
    header = out[0].split()
    # layers differs between the GRU4Rec runs but the baseline has no such parameter
    assert header[:2] == ["run", "model"] and "layers" not in header
    assert header[2:] == ["Recall@5", "MRR@5", "Recall@20", "MRR@20", "train", "s"]
    assert [line.split()[:2] for line in out[1:]] == [["small", "gru4rec"],
                                                      ["wide", "gru4rec"], ["spop", "spop"]]
    reports = [json.loads((p / "metrics.json").read_text()) for p in three_runs]
    for line, report in zip(out[1:], reports, strict=True):
        assert line.split()[2] == f"{report['results'][0]['metrics']['Recall@5']:.4f}"


def test_report_formats_and_plot(three_runs, capsys, tmp_path) -> None:
    code, out, _ = _run(capsys, "report", *three_runs[:2], "--format", "json")
    rows = json.loads("\n".join(out))
    assert [r["layers"] for r in rows] == [[8], [24]]  # shared and different: shown
    code, out, _ = _run(capsys, "report", *three_runs[:2], "--format", "csv")
    assert out[0].startswith("run,model,layers,Recall@5")
    code, out, _ = _run(capsys, "report", *three_runs, "--format", "markdown")
    assert out[1].startswith("| --- |") and len(out) == 5
    pytest.importorskip("matplotlib")
    code, out, err = _run(capsys, "report", *three_runs, "--plot", tmp_path / "cmp.png")
    assert code == 0, err
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"


def test_report_names_a_folder_without_a_report(capsys, tmp_path) -> None:
    code, _, err = _run(capsys, "report", tmp_path)
    assert code == 2 and "no run report at" in err and "Traceback" not in err


def test_report_names_a_folder_that_does_not_exist(capsys, tmp_path) -> None:
    code, _, err = _run(capsys, "report", tmp_path / "nope")
    assert code == 2 and "does not exist" in err and "Traceback" not in err
