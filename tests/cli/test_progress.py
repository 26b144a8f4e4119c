"""The progress bars (tqdm on stderr): silent without a terminal, drawn and wiped on one;
the training epoch lines; and the ``progress`` callback of ``evaluate``."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gru4rec import GRU4Rec, evaluate, training
from gru4rec.baselines import make_baseline
from gru4rec.cli import progress as progress_mod
from gru4rec.cli import recommend
from gru4rec.cli.main import main
from gru4rec.cli.progress import StepProgress, fit_with_progress, progress_bar
from gru4rec.data.events import Events

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"layers": [8], "batch_size": 8, "n_sample": 4, "n_epochs": 2,
        "sample_store_size": 1000}
EPOCH_LINE = re.compile(r"^Epoch(\d+) --> loss: \d+\.\d{6} \(\d+\.\d\ds\) "
                        r"\[\d+\.\d\d mb/s \| \d+ e/s\]$")


class _Tty(io.StringIO):
    """A terminal stand-in that records what is written to it."""

    def isatty(self) -> bool:
        return True


def _wiped(written: str) -> bool:
    """Whether ``written`` ends by blanking the line and returning to its start."""
    return re.search(r"\r {20,}\r+\Z", written) is not None


def _stderr(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO) -> Any:
    """Replace sys.stderr with ``stream`` (inside the test: pytest's output capture sets
    sys.stderr again when a test's call begins, after its fixtures)."""
    monkeypatch.setattr(progress_mod.sys, "stderr", stream)
    return stream


def _events(n_sessions: int = 40, length: int = 5) -> Events:
    rng = np.random.default_rng(0)
    item = rng.integers(0, 20, size=n_sessions * length).astype(np.int64)
    session = np.repeat(np.arange(n_sessions, dtype=np.int64), length)
    return Events(session=session, item=item,
                  time=np.arange(n_sessions * length, dtype=np.float64))


@pytest.fixture(scope="module")
def model() -> GRU4Rec:
    return GRU4Rec(device="cpu", seed=1, **TINY).fit(_events())


def test_nothing_is_written_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = _stderr(monkeypatch, io.StringIO())
    bar = StepProgress("Epoch1")
    for done in range(5):
        bar(done, 4)
    with progress_bar(3, "counting") as plain:
        plain.update(2)
    lines: list[str] = []
    fit_with_progress(GRU4Rec(device="cpu", seed=1, **TINY), _events(), lines.append)
    assert pipe.getvalue() == ""
    assert len(lines) == 2


def test_a_closed_or_missing_stderr_counts_as_no_terminal(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    closed = io.StringIO()
    closed.close()
    assert not progress_mod.is_terminal(closed)
    assert not progress_mod.is_terminal(None)
    monkeypatch.setattr(progress_mod.sys, "stderr", None)
    StepProgress("x")(1, 2)  # no error, nothing to write to


def test_a_bar_is_drawn_on_one_line_and_wiped_on_a_terminal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _stderr(monkeypatch, _Tty())
    bar = StepProgress("Epoch1")
    bar(1, 4)
    drawn = tty.getvalue()
    assert "Epoch1" in drawn and "/4" in drawn and "step" in drawn
    assert "\n" not in drawn
    bar(4, 4)
    wiped = tty.getvalue()[len(drawn):]
    assert wiped.strip(" \r") == "" and _wiped(wiped)  # blanked, the cursor back at 0
    assert "\n" not in tty.getvalue()


def test_a_disabled_bar_stays_silent_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _stderr(monkeypatch, _Tty())
    with StepProgress("Recommending", enabled=False) as bar:
        bar(1, 4)
    assert tty.getvalue() == ""


def test_leaving_the_block_wipes_an_unfinished_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _stderr(monkeypatch, _Tty())
    with pytest.raises(RuntimeError), StepProgress("Evaluating") as bar:
        bar(1, 10)
        raise RuntimeError("stop")
    assert "Evaluating" in tty.getvalue() and _wiped(tty.getvalue())


def test_one_object_opens_a_fresh_bar_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _stderr(monkeypatch, _Tty())
    bar = StepProgress("Epoch1")
    bar(1, 4)
    bar(4, 4)
    bar.label = "Epoch2"
    bar(1, 4)
    assert "Epoch2" in tty.getvalue().split("Epoch1")[-1]
    bar.close()
    bar.close()  # twice: harmless


def test_fit_with_progress_prints_exactly_the_epoch_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _stderr(monkeypatch, _Tty())
    monkeypatch.setattr(training, "NAN_CHECK_EVERY", 4)  # progress every 4 steps, not 500
    lines: list[str] = []
    seconds = fit_with_progress(GRU4Rec(device="cpu", seed=1, **TINY), _events(),
                                lines.append)
    assert seconds > 0
    assert [EPOCH_LINE.match(line).group(1) for line in lines] == ["1", "2"]  # type: ignore
    drawn = tty.getvalue()
    assert "Epoch1" in drawn and "Epoch2" in drawn
    assert "\n" not in drawn and _wiped(drawn)  # only the bars, each wiped in place


def test_fit_with_progress_reports_the_best_validation_epoch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = _stderr(monkeypatch, io.StringIO())
    from gru4rec.validation import Validation

    lines: list[str] = []
    record: dict[str, Any] = {}
    fit_with_progress(GRU4Rec(device="cpu", seed=1, **TINY), _events(), lines.append,
                      Validation(_events(10), cutoff=5), record)
    assert all(EPOCH_LINE.match(line.split(" | valid ")[0]) for line in lines[:2])
    assert lines[2].startswith("Best epoch: ") and len(lines) == 3
    assert "validation" in record and pipe.getvalue() == ""


@pytest.mark.parametrize("batch_size", [1, 7, 512])
def test_evaluate_reports_its_steps_and_ends_with_total_of_total(model: GRU4Rec,
                                                                 batch_size: int) -> None:
    calls: list[tuple[int, int]] = []
    result = evaluate(model, _events(12), batch_size=batch_size,
                      progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert calls[-1] == (total, total) and total > 0
    assert [d for d, _ in calls] == list(range(1, total + 1))
    assert {t for _, t in calls} == {total}
    assert result.metrics == evaluate(model, _events(12), batch_size=batch_size).metrics


def test_evaluate_reports_the_steps_of_the_user_replay() -> None:
    ev = _events(40, 5)
    users = np.array([f"u{s % 8}" for s in ev.session], dtype=object)
    log = Events(session=ev.session, item=ev.item, time=ev.time, user=users)
    train, test = log.select(ev.session < 32), log.select(ev.session >= 32)
    carry = GRU4Rec(device="cpu", seed=1, session_boundary="carry", **TINY).fit(train)
    calls: list[tuple[int, int]] = []
    evaluate(carry, test, batch_size=3, continue_state=True,
             progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert calls == [(d, total) for d in range(1, total + 1)] and total > 0


def test_evaluate_reports_the_prefix_batches_of_a_baseline() -> None:
    pop = make_baseline("pop", {}).fit(_events())
    calls: list[tuple[int, int]] = []
    evaluate(pop, _events(12), batch_size=16,
             progress=lambda done, total: calls.append((done, total)))
    assert calls == [(d, 3) for d in (1, 2, 3)]  # 12 sessions x 4 targets in batches of 16


def test_evaluate_draws_a_bar_through_step_progress(model: GRU4Rec,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _stderr(monkeypatch, _Tty())
    with StepProgress("Evaluating") as bar:
        evaluate(model, _events(12), batch_size=2, progress=bar)
    assert "Evaluating" in tty.getvalue() and "\n" not in tty.getvalue()
    assert _wiped(tty.getvalue())


def test_preprocess_keeps_its_step_lines_under_a_wiped_counter(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rsc15_clicks: str) -> None:
    pytest.importorskip("polars")
    raw = tmp_path / "yoochoose-clicks.dat"
    raw.write_text(rsc15_clicks)
    tty = _stderr(monkeypatch, _Tty())
    assert main(["preprocess", "rsc15", str(raw), "-o", str(tmp_path / "out")]) == 0
    lines = tty.getvalue().split("\n")
    steps = [line.rsplit("\r", 1)[-1] for line in lines[:-1]]  # what is left on screen
    assert steps[0].endswith("] read: 37 events, 14 sessions, 7 items")
    assert steps[-1].endswith("] wrote 4 files") and lines[-1] == ""
    assert all(re.fullmatch(r"\[ *\d+\.\ds\] .+", step) for step in steps)
    assert "rsc15: 0 step(s) done" in lines[0] and "reading yoochoose-clicks.dat" in lines[0]


@pytest.mark.parametrize("to_file", [True, False])
def test_recommend_batch_mode_draws_a_bar_only_beside_a_file_or_pipe(
        model: GRU4Rec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        to_file: bool) -> None:
    model.save(tmp_path / "model.pt")
    (tmp_path / "s.jsonl").write_text("[1, 2]\n[3]\n[4, 5, 6]\n")
    out = ["--output", str(tmp_path / "recs.tsv")] if to_file else []
    monkeypatch.setattr(recommend, "_CHUNK", 1)  # a bar needs more than one chunk
    tty = _stderr(monkeypatch, _Tty())
    if not to_file:  # the lists go to a terminal: they are the progress
        monkeypatch.setattr(sys, "stdout", _Tty())
    assert main(["recommend", str(tmp_path / "model.pt"), "--input",
                 str(tmp_path / "s.jsonl"), "-k", "2", *out]) == 0
    written = tty.getvalue()
    if to_file:
        bar, rest = written.split("\n", 1)[0].rsplit("\r", 1)
        assert "Recommending" in bar and "/3" in bar and _wiped(bar + "\r")
        assert rest.startswith("wrote recommendations for 3 session(s)")
    else:
        assert written == "" and sys.stdout.getvalue().startswith("SessionId\tRank")
