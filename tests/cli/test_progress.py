"""The training progress bar: silent without a terminal, drawn and wiped on one."""

from __future__ import annotations

import io

import pytest

from gru4rec.cli import progress as progress_mod
from gru4rec.cli.progress import ProgressBar

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_silent_without_a_terminal(monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(progress_mod.sys, "stderr", stream)
    bar = ProgressBar("Epoch1")
    bar(5, 10)
    bar(10, 10)
    assert stream.getvalue() == ""


def test_progress_bar_draws_and_clears_on_a_terminal(monkeypatch) -> None:
    stream = _Tty()
    monkeypatch.setattr(progress_mod.sys, "stderr", stream)
    bar = ProgressBar("Epoch1")
    bar(0, 4)
    bar(2, 4)
    drawn = stream.getvalue()
    assert drawn.startswith("\rEpoch1 [") and " 50% 2/4 steps" in drawn and "ETA" in drawn
    assert "\n" not in drawn
    bar(4, 4)
    assert stream.getvalue()[len(drawn):].strip(" \r") == ""  # the line is wiped
