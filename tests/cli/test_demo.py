"""``gru4rec demo``: a small end-to-end run prints its training, metrics and examples."""

from __future__ import annotations

import re

import pytest

from gru4rec.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EPOCH_RE = re.compile(r"^Epoch1 --> loss: \d+\.\d{6} \(\d+\.\d{2}s\) "
                      r"\[\d+\.\d{2} mb/s \| \d+ e/s\]$")


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, list[str], str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_demo_small(capsys) -> None:
    code, out, err = _run(capsys, "demo", "--items", 60, "--sessions", 300, "--epochs", 1,
                          "--layers", 16, "-d", "cpu")
    assert code == 0, err
    text = "\n".join(out)
    assert re.search(r"^Recall@20: \d\.\d{6} MRR@20: \d\.\d{6}$", text, re.M)
    assert "most popular" in text
    assert "Top-5 recommendations" in text
    assert any(EPOCH_RE.match(line) for line in out)
