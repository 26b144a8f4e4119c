"""Fault injection while writing model files (``gru4rec.model_file.save_atomically``, through
GRU4Rec.save, a baseline's save, training checkpoints and ``gru4rec run -s``): a full disk
(ENOSPC) at any point of the write, and SIGKILL at random moments of repeated saves, leave the
previous file at the path byte-identical (or, after a kill, one whole written version).

ENOSPC is injected at the file level (monkeypatched, so it always runs): the written file's
writes fail once a byte budget is spent (at the first byte, or mid-file), or its flush,
``os.fsync`` or ``os.replace`` fails. Each injection counts its hits, so a test whose fault
never fired fails instead of passing vacuously. A real full file system (a tiny tmpfs in a
private mount namespace) is tried too, and skipped with the reason where it cannot be mounted.

A writer killed mid-write may leave its temporary file (``.NAME.*.tmp``) in the folder: that
is allowed; it is never at the model's path and never taken for a checkpoint.

Durability: the file is fsynced, renamed, then its folder fsynced (POSIX; skipped without
``os.O_DIRECTORY``, as on Windows).
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import gru4rec
from gru4rec import GRU4Rec
from gru4rec.baselines import Baseline, make_baseline
from gru4rec.cli.main import main
from gru4rec.data.events import Events

POINTS = ["first-byte", "mid-file", "flush", "fsync", "replace"]
QUERY = [[100, 101, 102], [117], [129, 100]]  # item ids of make_model's models
SRC = Path(gru4rec.__file__).resolve().parents[1]
NO_SPACE = os.strerror(errno.ENOSPC)


class FullDisk:
    """The disk fills up at ``point`` of the next file write (see POINTS); ``hits`` counts
    the faults raised. ``budget``: the bytes that still fit, for ``mid-file``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, point: str, budget: int = 0) -> None:
        assert point in POINTS, point
        self.point, self.hits = point, 0
        self.room = 0 if point == "first-byte" else budget if point == "mid-file" else 1 << 62
        real_fdopen, real_open = os.fdopen, builtins.open

        def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            return self._wrap(real_fdopen(fd, mode, *args, **kwargs), mode)

        def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            return self._wrap(real_open(file, mode, *args, **kwargs), mode)

        # however the file is opened: a save that wrote in place would be caught too
        monkeypatch.setattr(os, "fdopen", fdopen)
        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)
        if point in ("fsync", "replace"):
            monkeypatch.setattr(os, point, self._fail)

    def fault(self) -> OSError:
        self.hits += 1
        return OSError(errno.ENOSPC, NO_SPACE)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.fault()

    def _wrap(self, fh: Any, mode: str) -> Any:
        writes = "b" in mode and any(c in mode for c in "wax+")
        return _FillingFile(fh, self) if writes else fh


class _FillingFile:
    """A binary file being written on a disk that fills up (see :class:`FullDisk`)."""

    def __init__(self, fh: Any, disk: FullDisk) -> None:
        self._fh, self._disk = fh, disk

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if len(view) > self._disk.room:  # what fits is written, as on a real disk
            self._fh.write(view[:self._disk.room])
            self._disk.room = 0
            raise self._disk.fault()
        self._disk.room -= len(view)
        return self._fh.write(view)

    def flush(self) -> None:
        if self._disk.point == "flush":
            raise self._disk.fault()
        self._fh.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def _size_of(save: Callable[[Path], None], folder: Path) -> int:
    """The size of the file ``save`` writes (written to a probe file, then removed)."""
    probe = folder / "size-probe"
    save(probe)
    size = probe.stat().st_size
    probe.unlink()
    return size


def _assert_no_space_error(exc: BaseException, path: Path) -> None:
    """A clear error: an OSError of ENOSPC naming the file and the reason."""
    assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC, repr(exc)
    assert exc.filename == str(path), repr(exc)
    assert NO_SPACE in str(exc) and str(path) in str(exc), str(exc)


def _assert_untouched(path: Path, before: bytes) -> None:
    """``path`` is byte-identical and alone in its folder (no temporary file left)."""
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


# ----------------------------------------------------------------------------- ENOSPC


def _full_disk_keeps_the_previous_file(old: Any, new: Any, path: Path, query: list[Any],
                                       load: Callable[[Path], Any], point: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Save ``old``, then ``new`` onto a disk that fills up at ``point``: the error names the
    path, and ``old`` is still there, byte for byte, with the same recommendations."""
    old.save(path)
    before, (items, scores) = path.read_bytes(), old.recommend(query, k=5)
    disk = FullDisk(monkeypatch, point, budget=_size_of(new.save, path.parent) // 2)
    with pytest.raises(OSError) as info:
        new.save(path)
    monkeypatch.undo()
    assert disk.hits >= 1  # the fault fired (torch may try to write on after it)
    _assert_no_space_error(info.value, path)
    _assert_untouched(path, before)
    items_b, scores_b = load(path).recommend(query, k=5)
    np.testing.assert_array_equal(items_b, items)
    np.testing.assert_array_equal(scores_b, scores)


@pytest.mark.parametrize("point", POINTS)
def test_gru4rec_save_on_a_full_disk_keeps_the_previous_file(
        point: str, make_model: Callable[..., GRU4Rec], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _full_disk_keeps_the_previous_file(
        make_model(30, seed=0), make_model(40, layers=(16,), seed=1), tmp_path / "model.pt",
        QUERY, lambda p: GRU4Rec.load(p, device="cpu"), point, monkeypatch)


@pytest.mark.parametrize("point", POINTS)
def test_baseline_save_on_a_full_disk_keeps_the_previous_file(
        point: str, successor_events: Callable[..., Events], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _full_disk_keeps_the_previous_file(
        make_baseline("itemknn", {}).fit(successor_events(20, 60, 4, seed=0)),
        make_baseline("itemknn", {}).fit(successor_events(40, 200, 5, seed=1)),
        tmp_path / "knn.model", [[3, 4], [7]], Baseline.load, point, monkeypatch)


CKPT_PARAMS: dict[str, Any] = {"layers": [8], "batch_size": 8, "n_sample": 4,
                               "sample_store_size": 200, "learning_rate": 0.1}


@pytest.mark.parametrize("point", POINTS)
def test_a_checkpoint_on_a_full_disk_keeps_the_previous_one(
        point: str, successor_events: Callable[..., Events], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    events, folder = successor_events(20, 60, 4, seed=0), tmp_path / "ckpt"
    once = GRU4Rec(device="cpu", seed=1, n_epochs=1, **CKPT_PARAMS).fit(
        events, checkpoint_dir=folder)
    first = folder / "epoch-0001.ckpt"
    before = first.read_bytes()
    disk = FullDisk(monkeypatch, point, budget=len(before) // 2)
    with pytest.raises(OSError) as info:  # epoch 2's checkpoint does not fit
        GRU4Rec(device="cpu", seed=1, n_epochs=2, **CKPT_PARAMS).fit(
            events, checkpoint_dir=folder, resume=True)
    monkeypatch.undo()
    assert disk.hits >= 1  # the fault fired (torch may try to write on after it)
    _assert_no_space_error(info.value, folder / "epoch-0002.ckpt")
    _assert_untouched(first, before)
    # the previous checkpoint resumes, and a killed writer's temp file is never taken for one
    (folder / ".epoch-0002.ckpt.k1ll3d.tmp").write_bytes(before[:len(before) // 2])
    with caplog.at_level(logging.WARNING, logger="gru4rec"):
        resumed = GRU4Rec(device="cpu", seed=1, n_epochs=1, **CKPT_PARAMS).fit(
            events, checkpoint_dir=folder, resume=True)
    assert not caplog.records, caplog.text
    for name, weights in once.net_.params.items():
        assert torch.equal(resumed.net_.params[name], weights), name


# ----------------------------------------------------------------------------- durability


def test_save_syncs_the_file_then_renames_then_syncs_the_folder(
        make_model: Callable[..., GRU4Rec], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    model, path = make_model(30), tmp_path / "model.pt"
    model.save(path)
    assert calls == ["fsync file", "replace", "fsync folder"]
    calls.clear()
    monkeypatch.delattr(os, "O_DIRECTORY")  # as on Windows, which cannot open a folder
    model.save(path)
    assert calls == ["fsync file", "replace"]
    GRU4Rec.load(path, device="cpu")


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="no folder sync without O_DIRECTORY")
@pytest.mark.parametrize(("code", "raises"), [(errno.EINVAL, False), (errno.EIO, True)])
def test_a_folder_that_cannot_be_synced_is_no_error_but_an_io_error_is(
        code: int, raises: bool, make_model: Callable[..., GRU4Rec], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "model.pt"
    if raises:
        with pytest.raises(OSError, match=os.strerror(code)):
            make_model(30).save(path)
    else:
        make_model(30).save(path)
    monkeypatch.undo()
    GRU4Rec.load(path, device="cpu")  # renamed into place either way: the data is whole
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


# ----------------------------------------------------------------------------- a real full disk

MOUNT = 'mount -t tmpfs -o size=64k tmpfs "$0" || exit 77; [ -z "$1" ] || exec "$@"'
FULL_CHILD = """
import json, os, sys
from gru4rec import GRU4Rec

old_file, new_file, folder = sys.argv[1:4]
path = os.path.join(folder, "model.pt")
GRU4Rec.load(old_file, device="cpu").save(path)
before = open(path, "rb").read()
try:
    GRU4Rec.load(new_file, device="cpu").save(path)
    error = None
except OSError as exc:
    error = {"errno": exc.errno, "filename": exc.filename, "text": str(exc)}
items, scores = GRU4Rec.load(path, device="cpu").recommend(json.loads(sys.argv[4]), k=5)
print(json.dumps({"error": error, "intact": open(path, "rb").read() == before,
                  "listing": sorted(os.listdir(folder)), "items": items.tolist(),
                  "scores": scores.tolist()}))
"""


def _unshare() -> list[str]:
    """A private mount namespace (as root, or as the root of a new user namespace)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("a real full disk needs Linux and unshare(1) to mount a private tmpfs")
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--mount", "sh", "-c", MOUNT]


def test_gru4rec_save_on_a_real_full_tmpfs_keeps_the_previous_file(
        make_model: Callable[..., GRU4Rec], tmp_path: Path) -> None:
    folder, command = tmp_path / "small-disk", _unshare()
    folder.mkdir()
    probe = subprocess.run([*command, str(folder)], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a 64 KiB tmpfs here: {probe.stderr.strip()}")
    old, new = make_model(30, seed=0), make_model(2000, layers=(64,), seed=1)  # 12 KB, 650 KB
    old.save(tmp_path / "old.pt")
    new.save(tmp_path / "new.pt")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([*command, str(folder), sys.executable, "-c", FULL_CHILD,
                           str(tmp_path / "old.pt"), str(tmp_path / "new.pt"), str(folder),
                           json.dumps(QUERY)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    path = str(folder / "model.pt")
    assert result["error"] is not None, "a 650 KB model was saved on a 64 KiB disk"
    assert result["error"]["errno"] == errno.ENOSPC and result["error"]["filename"] == path
    assert NO_SPACE in result["error"]["text"]
    assert result["intact"] and result["listing"] == ["model.pt"]
    items, scores = old.recommend(QUERY, k=5)
    assert result["items"] == items.tolist()
    np.testing.assert_array_equal(np.asarray(result["scores"], dtype=np.float32), scores)


# ----------------------------------------------------------------------------- the CLI

CLI_PARAMS = ("-ps", "layers=16,n_epochs=1,n_sample=16,batch_size=8", "-d", "cpu",
              "-ss", "20000")
PREVIOUS_PARAMS = ("-ps", "layers=12,n_epochs=1,n_sample=16,batch_size=8", "-d", "cpu",
                   "-ss", "20000")  # a previous file unlike the one the failing run writes


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """(a tiny training file, a model file ``gru4rec run`` saved from it with other
    hyperparameters than CLI_PARAMS)."""
    from gru4rec.data.synthetic import make_sessions

    folder = tmp_path_factory.mktemp("cli_save")
    events = make_sessions(40, 120, seed=3)
    lines = ["SessionId\tItemId\tTime"] + [
        f"{s}\t{i}\t{t!r}" for s, i, t in
        zip(events.session.tolist(), events.item.tolist(), events.time.tolist(), strict=True)]
    train = folder / "train.tsv"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = torch.get_num_threads()
    code = main(["run", str(train), *PREVIOUS_PARAMS, "-s", str(folder / "model.pt")])
    torch.set_num_threads(before)
    assert code == 0
    return train, (folder / "model.pt").read_bytes()


@pytest.mark.parametrize("point", ["mid-file", "fsync"])
def test_cli_run_on_a_full_disk_exits_2_with_the_fix_and_keeps_the_previous_file(
        point: str, cli_run: tuple[Path, bytes], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    train, before = cli_run
    path = tmp_path / "model.pt"
    path.write_bytes(before)
    capsys.readouterr()
    disk = FullDisk(monkeypatch, point, budget=len(before) // 2)
    code = main(["run", str(train), *CLI_PARAMS, "-s", str(path)])
    monkeypatch.undo()
    out, err = capsys.readouterr()
    assert disk.hits >= 1  # the fault fired (torch may try to write on after it)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"error: {NO_SPACE}: {path}; free some space on that disk, or choose a folder on "
        "another disk")
    assert f"Saving trained model to: {path}" in out
    _assert_untouched(path, before)
    GRU4Rec.load(path, device="cpu")


# ----------------------------------------------------------------------------- SIGKILL

ROUNDS, MAX_DELAY_S = 12, 0.2
KILLER = """
# Per round: fork a writer that saves the model to ROUND/model.pt again and again (version
# v: Wyb[0, -1] = v), SIGKILL it a random moment after its first save, report the versions
# it completed. Forked, so torch is imported once for all the rounds.
import json, os, random, signal, sys, time
import torch

torch.set_num_threads(1)
from gru4rec import GRU4Rec

base, folder, rounds, max_delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
model = GRU4Rec.load(base, device="cpu")
rng = random.Random(0)
for r in range(rounds):
    path = os.path.join(folder, "round%02d" % r, "model.pt")
    os.makedirs(os.path.dirname(path))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        for version in range(1000 * r, 1000 * r + 1000):
            model.net_.params["Wyb"][0, -1] = float(version)
            model.save(path)
            os.write(write_end, b"%d\\n" % version)
        os._exit(3)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        first = reader.readline()  # the first save is complete
        time.sleep(rng.uniform(0.0, max_delay))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        done = [int(v) for v in [first, *reader.readlines()] if v.strip()]
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    print(json.dumps({"path": path, "done": done, "killed": killed}), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="SIGKILL and fork are POSIX only")
def test_sigkill_while_saving_leaves_a_whole_version_at_the_path(
        make_model: Callable[..., GRU4Rec], tmp_path: Path) -> None:
    model = make_model(40_000, layers=(64,), seed=7)  # an 11 MB file: a save takes ~50 ms
    model.save(tmp_path / "base.pt")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path / "base.pt"),
                           str(tmp_path), str(ROUNDS), str(MAX_DELAY_S)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rounds = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rounds) == ROUNDS
    temp = re.compile(r"^\.model\.pt\..+\.tmp$")
    left_temp = 0
    for result in rounds:
        assert result["killed"] and result["done"], result
        path = Path(result["path"])
        loaded = GRU4Rec.load(path, device="cpu")  # whole: the checksum is verified
        version = int(loaded.net_.params["Wyb"][0, -1])
        # the last save reported, or the next one, renamed before its report
        assert version in (result["done"][-1], result["done"][-1] + 1), (version, result)
        for name, weights in model.net_.params.items():
            expected = weights.clone()
            if name == "Wyb":
                expected[0, -1] = version
            assert torch.equal(loaded.net_.params[name], expected), (name, result)
        others = [p.name for p in path.parent.iterdir() if p != path]
        assert all(temp.match(name) for name in others), others  # a killed writer's temp
        left_temp += bool(others)
    # the kills did land mid-write (else this test would prove little)
    assert left_temp > 0, "no kill landed while a temporary file was being written"
