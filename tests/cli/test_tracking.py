"""``gru4rec run --mlflow``: a run logged to a real MLflow store reads back with MLflow's own
client (parameters, metric history, artifacts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gru4rec.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = "layers=16,n_epochs=3,n_sample=16,batch_size=8"


def _client(uri: str):  # noqa: ANN202  (mlflow's client type)
    mlflow = pytest.importorskip("mlflow")
    return mlflow.tracking.MlflowClient(uri)


def _only_run(client, experiment: str):  # noqa: ANN001, ANN202
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return runs[0]


def test_a_run_logged_to_a_file_store_reads_back(data, capsys, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    uri = f"file:{tmp_path / 'mlruns'}"
    model = tmp_path / "m.pt"
    code = main([str(a) for a in ("run", data["train"], "-ps", TINY, "-t", data["test"],
                                  "-m", 5, 20, "--valid", data["test"], "-s", model,
                                  "--mlflow", uri, "--mlflow_experiment", "tests",
                                  "-d", "cpu", "-ss", 20000)])
    out, err = capsys.readouterr()
    assert code == 0, err
    client = _client(uri)
    run = _only_run(client, "tests")
    assert f"run {run.info.run_id}" in out.splitlines()[-1]
    assert run.data.params["layers"] == "[16]" and run.data.params["model"] == "gru4rec"
    printed = [line.split() for line in out.splitlines() if line.startswith("Recall@20")]
    assert f"{run.data.metrics['Recall_at_20']:.6f}" == printed[0][1]
    loss = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in loss] == [1, 2, 3]
    assert len(client.get_metric_history(run.info.run_id, "valid/Recall_at_20")) == 3
    names = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert "report/metrics.json" in names
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == {"model/m.pt"}
    local = client.download_artifacts(run.info.run_id, "report/metrics.json", str(tmp_path))
    assert json.loads(Path(local).read_text())["model"] == "gru4rec"


def test_the_default_is_a_local_mlruns_folder(data, capsys, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    code = main([str(a) for a in ("run", data["train"], "--model", "pop", "-t",
                                  data["test"], "--mlflow")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    run = _only_run(_client(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"), "gru4rec")
    assert run.data.params["model"] == "pop" and "Recall_at_20" in run.data.metrics


def test_without_mlflow_the_install_line_comes_before_training(data, capsys,
                                                               monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    code = main([str(a) for a in ("run", data["train"], "-ps", TINY, "--mlflow")])
    out, err = capsys.readouterr()
    assert code == 2 and 'pip install "gru4rec[track]"' in err
    assert "Started training" not in out
