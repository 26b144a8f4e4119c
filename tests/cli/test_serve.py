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
    assert main(["serve", str(path), "--admin-token-file", str(tmp_path / "none")]) == 2
    assert "cannot read the admin token from" in capsys.readouterr().err
    (tmp_path / "token").write_text("short\n")
    assert main(["serve", str(path), "--admin-token-file", str(tmp_path / "token")]) == 2
    assert "at least 16 printable characters" in capsys.readouterr().err
    monkeypatch.setenv("GRU4REC_ADMIN_TOKEN", "short")
    assert main(["serve", str(path)]) == 2
    assert "at least 16 printable characters" in capsys.readouterr().err
    monkeypatch.delenv("GRU4REC_ADMIN_TOKEN")
    assert main(["serve", str(path), "--watch", "0"]) == 2
    assert "watch must be at least 0.1 seconds" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fastapi" else real(name, *a))
    assert main(["serve", str(path)]) == 2
    assert 'pip install "gru4rec[serve]"' in capsys.readouterr().err
