"""``gru4rec serve``: the usage errors it reports before starting a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from gru4rec.cli.main import main


@pytest.fixture(scope="module")
def model(make_model):
    return make_model(30, layers=(12, 10))


def test_cli_serve_usage_errors(model, tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "m.pt"
    model.save(path)
    assert main(["serve", str(path), "--workers", "2"]) == 2
    assert "needs --redis-url" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fastapi" else real(name, *a))
    assert main(["serve", str(path)]) == 2
    assert 'pip install "gru4rec[serve]"' in capsys.readouterr().err
