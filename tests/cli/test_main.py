"""The ``gru4rec`` command itself: --version, --help through ``python -m gru4rec``, usage
errors, -v logging and the exit code of an interrupted command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gru4rec import __version__
from gru4rec.cli import run as run_mod
from gru4rec.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a tiny training run: CPU, and a small negative-sample store
TINY = "layers=16,n_epochs=1,n_sample=16,batch_size=8"
FAST = ("-d", "cpu", "-ss", "20000")


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, list[str], str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gru4rec {__version__}"


def test_python_dash_m_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "gru4rec", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "run" in proc.stdout and "demo" in proc.stdout


def test_usage_errors_exit_2(capsys) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error: ") == 2


def test_verbose_shows_library_info(data, capsys) -> None:
    code, _, err = _run(capsys, "run", data["train"], "-ps", TINY, *FAST, "-v")
    assert code == 0
    assert "info: training on" in err


def test_keyboard_interrupt_exits_130(data, capsys, monkeypatch) -> None:
    def interrupted(args) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "execute", interrupted)
    code, _, err = _run(capsys, "run", data["train"], "-ps", TINY)
    assert code == 130
    assert "error: interrupted" in err and "Traceback" not in err
