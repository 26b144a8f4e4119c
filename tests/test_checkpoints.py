"""Checkpoints and resume (gru4rec.checkpoints, GRU4Rec.fit(checkpoint_dir=, resume=)):
a resumed run ends with the weights of a run never interrupted, also after SIGKILL at
random moments; bad checkpoints are skipped or refused with messages naming them."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gru4rec import GRU4Rec
from gru4rec.data.events import Events
from gru4rec.errors import ConfigError, DataError

# every source of randomness the resume must restore: sampling from a store that is redrawn
# within an epoch, dropout, a new session order every epoch, momentum
PARAMS: dict[str, Any] = {"layers": [16], "batch_size": 8, "n_sample": 8, "n_epochs": 4,
                          "learning_rate": 0.1, "momentum": 0.2, "dropout_p_hidden": 0.3,
                          "train_random_order": True, "sample_store_size": 400}
Make = Callable[..., Events]


class Stop(Exception):
    pass


def _stop_after(epoch: int) -> Callable[[Any], None]:
    def on_epoch(result: Any) -> None:
        if result.epoch == epoch:
            raise Stop
    return on_epoch


def _weights(model: GRU4Rec) -> dict[str, torch.Tensor]:
    return {n: p.clone() for n, p in model.net_.params.items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def events(successor_events: Make) -> Events:
    return successor_events(n_items=30, n_sessions=120, length=5, seed=0)


@pytest.fixture(scope="module")
def whole(events: Events) -> dict[str, torch.Tensor]:
    """The weights of the uninterrupted run."""
    return _weights(GRU4Rec(device="cpu", seed=3, **PARAMS).fit(events))


def test_a_resumed_run_ends_with_the_uninterrupted_weights(
        events: Events, whole: dict[str, torch.Tensor], tmp_path: Path) -> None:
    with pytest.raises(Stop):
        GRU4Rec(device="cpu", seed=3, **PARAMS).fit(
            events, checkpoint_dir=tmp_path, on_epoch=_stop_after(2))
    resumed = GRU4Rec(device="cpu", seed=3, **PARAMS).fit(
        events, checkpoint_dir=tmp_path, resume=True)
    _assert_same(_weights(resumed), whole)
    assert [r.epoch for r in resumed.history_] == [1, 2, 3, 4]


def test_only_the_newest_checkpoints_are_kept(events: Events, tmp_path: Path) -> None:
    GRU4Rec(device="cpu", seed=3, **PARAMS).fit(events, checkpoint_dir=tmp_path,
                                                 keep_checkpoints=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0003.ckpt", "epoch-0004.ckpt"]


def test_a_truncated_or_foreign_checkpoint_is_skipped_with_a_warning(
        events: Events, whole: dict[str, torch.Tensor], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(Stop):
        GRU4Rec(device="cpu", seed=3, **PARAMS).fit(
            events, checkpoint_dir=tmp_path, on_epoch=_stop_after(3))
    newest = tmp_path / "epoch-0003.ckpt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    torch.save({"format": "something else"}, tmp_path / "epoch-0009.ckpt")
    with caplog.at_level(logging.WARNING, logger="gru4rec"):
        resumed = GRU4Rec(device="cpu", seed=3, **PARAMS).fit(
            events, checkpoint_dir=tmp_path, resume=True)
    assert f"skipping checkpoint {newest}" in caplog.text
    assert f"skipping checkpoint {tmp_path / 'epoch-0009.ckpt'}" in caplog.text
    _assert_same(_weights(resumed), whole)  # from epoch 2's checkpoint


def test_a_checkpoint_of_other_data_or_another_config_is_refused(
        events: Events, successor_events: Make, tmp_path: Path) -> None:
    GRU4Rec(device="cpu", seed=3, **{**PARAMS, "n_epochs": 1}).fit(
        events, checkpoint_dir=tmp_path)
    other = successor_events(n_items=30, n_sessions=120, length=5, seed=1)
    with pytest.raises(DataError, match="was written for other training data"):
        GRU4Rec(device="cpu", seed=3, **PARAMS).fit(other, checkpoint_dir=tmp_path,
                                                     resume=True)
    with pytest.raises(ConfigError, match=r"learning_rate \(0\.1 in the checkpoint, 0\.2 now\)"):
        GRU4Rec(device="cpu", seed=3, **{**PARAMS, "learning_rate": 0.2}).fit(
            events, checkpoint_dir=tmp_path, resume=True)
    # n_epochs may differ: the run continues for the epochs it lacks
    more = GRU4Rec(device="cpu", seed=3, **PARAMS).fit(events, checkpoint_dir=tmp_path,
                                                        resume=True)
    assert len(more.history_) == 4


def test_resume_without_a_checkpoint_trains_from_the_start(
        events: Events, whole: dict[str, torch.Tensor], tmp_path: Path) -> None:
    model = GRU4Rec(device="cpu", seed=3, **PARAMS).fit(events, checkpoint_dir=tmp_path,
                                                         resume=True)
    _assert_same(_weights(model), whole)
    with pytest.raises(ConfigError, match="resume needs the checkpoint folder"):
        GRU4Rec(device="cpu", **PARAMS).fit(events, resume=True)
    with pytest.raises(ConfigError, match="keep_checkpoints must be >= 1"):
        GRU4Rec(device="cpu", **PARAMS).fit(events, checkpoint_dir=tmp_path,
                                            keep_checkpoints=0)


_SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(1)
from gru4rec import GRU4Rec
from gru4rec.data.events import Events
rng = np.random.default_rng(0)
first = rng.integers(0, 60, size=4000)
items = ((first[:, None] + np.arange(6)[None, :]) % 60).ravel().astype(np.int64)
events = Events(session=np.repeat(np.arange(4000), 6), item=items,
                time=np.arange(24000, dtype=np.float64))
params = dict(layers=[32], batch_size=16, n_sample=64, n_epochs=5, learning_rate=0.1,
              momentum=0.2, dropout_p_hidden=0.2, train_random_order=True,
              sample_store_size=5000)
folder = sys.argv[2] if len(sys.argv) > 2 else None
model = GRU4Rec(device="cpu", seed=7, **params).fit(events, checkpoint_dir=folder,
                                                   resume=folder is not None)
torch.save({n: p for n, p in model.net_.params.items()}, sys.argv[1])
"""


def test_sigkill_at_three_random_moments_then_resume_gives_the_same_weights(
        tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref.pt"
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(ref)], check=True, env=env)
    total = time.perf_counter() - start
    folder, out = tmp_path / "ckpt", tmp_path / "out.pt"
    rng = np.random.default_rng(11)
    mid_run = 0  # kills that left a run with some but not all of its epochs
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(script), str(out), str(folder)], env=env)
        time.sleep(float(rng.uniform(0.3, 0.9)) * total)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = sorted(folder.glob("epoch-*.ckpt")) if folder.exists() else []
        mid_run += bool(done) and not out.exists()
        out.unlink(missing_ok=True)  # a run that finished before its kill starts over
    assert mid_run >= 1
    subprocess.run([sys.executable, str(script), str(out), str(folder)], check=True, env=env)
    want = torch.load(ref, weights_only=True)
    _assert_same(torch.load(out, weights_only=True), want)


def test_ctrl_c_stops_after_the_epochs_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    first = rng.integers(0, 60, size=2000)
    items = ((first[:, None] + np.arange(6)[None, :]) % 60).ravel()
    lines = ["SessionId\tItemId\tTime"] + [f"{i // 6}\t{item}\t{i}"
                                           for i, item in enumerate(items.tolist())]
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(lines) + "\n")
    folder = tmp_path / "ckpt"
    argv = [sys.executable, "-m", "gru4rec", "run", str(train), "-d", "cpu", "-ss", "5000",
            "-ps", "layers=32,batch_size=16,n_sample=64,n_epochs=12", "--checkpoint_dir",
            str(folder), "--keep_checkpoints", "12"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not (folder / "epoch-0001.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "training stops after this epoch's checkpoint" in err and "Traceback" not in err
    assert "stopped after epoch" in err
    epochs = [line for line in out.splitlines() if line.startswith("Epoch")]
    written = sorted(p.name for p in folder.glob("epoch-*.ckpt"))
    # the epoch running at Ctrl-C finished, printed its line and wrote its checkpoint
    assert 1 <= len(epochs) < 12 and written[-1] == f"epoch-{len(epochs):04d}.ckpt"
    done = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = [line for line in done.stdout.splitlines() if line.startswith("Epoch")]
    assert resumed[0].startswith(f"Epoch{len(epochs) + 1} ") and resumed[-1].startswith(
        "Epoch12 ")
