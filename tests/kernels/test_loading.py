"""The kernel loader and the install-time build: which library is loaded, what happens
without one (one warning, PyTorch ops, never a traceback), and that nothing is written at
run time."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from gru4rec.kernels import Kernels, build, kernels_info, load_kernels, loader, selection

ROOT = Path(__file__).resolve().parents[2]
UNAVAILABLE = "the compiled CPU kernels are unavailable"


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A loader that has loaded nothing yet (and forgets again afterwards), with the
    variant not forced and the kernels not switched off."""
    monkeypatch.delenv(selection.ENV_VARIANT, raising=False)
    monkeypatch.delenv(loader.ENV_NATIVE, raising=False)
    loader.reset()
    yield
    loader.reset()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "gru4rec.kernels" and r.levelno == logging.WARNING]


def _have_compiler() -> bool:
    if build.find_compiler() is not None:
        return True
    if os.environ.get("CI"):
        pytest.fail("the CI machine needs a C compiler")
    pytest.skip("no C compiler")


# ------------------------------------------------------------------------ switching off


def test_native_can_be_switched_off(monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("GRU4REC_NATIVE", "0")
    assert load_kernels() is None
    info = kernels_info()
    assert not info.available and "GRU4REC_NATIVE=0" in (info.reason or "")
    assert _warnings(caplog) == []  # asked for: nothing to warn about


# ---------------------------------------------------------------------- what is loaded


def test_the_loaded_library_is_the_installed_build_of_this_source(k: Kernels) -> None:
    info = kernels_info()
    assert info.available and info.path is not None
    assert info.path.parent == loader.LIBRARY_DIR
    assert info.path.name == build.library_name(info.variant or "", info.threading or "")
    lib = ctypes.CDLL(str(info.path))
    lib.gru4rec_source_hash.restype = ctypes.c_char_p
    digest = build.source_hash(build.read_source(loader.SOURCE))
    assert lib.gru4rec_source_hash().decode() == digest
    assert info.variant in info.supported and info.variant in info.installed
    if not os.environ.get(selection.ENV_VARIANT):  # by default the best the CPU runs
        assert info.variant == [v for v in info.supported if v in info.installed][-1]


def test_openmp_builds_only_where_pytorch_runs_gnu_openmp(k: Kernels) -> None:
    assert kernels_info().threading == ("openmp" if selection.process_uses_gomp() else "simd")


def test_two_threads_at_first_use_get_the_same_kernels(fresh: None, k: Kernels,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    opened: list[Path] = []
    real_open = loader._open

    def slow_open(path: Path, *args: str) -> ctypes.CDLL:
        opened.append(path)
        time.sleep(0.05)  # widen the window in which a second thread could slip in
        return real_open(path, *args)

    monkeypatch.setattr(loader, "_open", slow_open)
    barrier = threading.Barrier(2)
    got: list[Kernels | None] = [None, None]

    def first_use(i: int) -> None:
        barrier.wait()
        got[i] = load_kernels()

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got[0] is not None and got[0] is got[1]
    assert 1 <= len(opened) == len(set(opened)) <= 2  # one load: the probe and the variant


@pytest.mark.parametrize("variant", ["generic", "avx2", "avx512"])
def test_a_forced_variant_is_the_one_loaded(fresh: None, k: Kernels, variant: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    supported = kernels_info().supported
    if variant not in supported:
        pytest.skip(f"this CPU cannot run the {variant} kernels")
    monkeypatch.setenv(selection.ENV_VARIANT, variant)
    loader.reset()
    forced = load_kernels()
    info = kernels_info()
    assert forced is not None and info.variant == variant, info
    assert info.path is not None and f"-{variant}-" in info.path.name
    assert _warnings(caplog) == []
    r = torch.zeros(2, 9)
    r[0, 0] = 3.0
    assert forced.bpr_max_(r, 2, 1.0, 0.0) > 0  # and it runs


def test_forcing_a_variant_the_cpu_lacks_falls_back_with_a_warning(
        fresh: None, k: Kernels, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    if not build.is_x86_64():
        pytest.skip("one variant only off x86-64")
    if "avx2" not in kernels_info().installed:
        pytest.skip("no avx2 build installed")
    # a CPU with AVX2 but without AVX-512
    monkeypatch.setattr(selection, "supported_variants", lambda level, machine=None:
                        ("generic", "avx2"))
    monkeypatch.setenv(selection.ENV_VARIANT, "avx512")
    loader.reset()
    assert load_kernels() is not None
    info = kernels_info()
    assert info.variant == "avx2" and info.supported == ("generic", "avx2")
    [warning] = _warnings(caplog)
    assert "cannot run the avx512 kernels" in warning and "using avx2" in warning


def test_by_default_no_variant_beyond_the_cpu_is_loaded(fresh: None, k: Kernels,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setattr(selection, "supported_variants", lambda level, machine=None:
                        ("generic",))
    assert load_kernels() is not None and kernels_info().variant == "generic"


def test_an_unknown_variant_name_falls_back_with_a_warning(
        fresh: None, k: Kernels, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    best = kernels_info().variant
    monkeypatch.setenv(selection.ENV_VARIANT, "sse9")
    loader.reset()
    assert load_kernels() is not None and kernels_info().variant == best
    [warning] = _warnings(caplog)
    assert "'sse9' is not a kernel variant" in warning


def test_a_library_that_fails_to_load_gives_way_to_the_next(
        fresh: None, k: Kernels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    info = kernels_info()
    if info.variant == "generic":
        pytest.skip("only the generic variant runs here")
    assert info.path is not None
    for path in loader.LIBRARY_DIR.glob("libgru4rec-*.so"):
        shutil.copy2(path, tmp_path / path.name)
    (tmp_path / info.path.name).write_bytes(b"not a library")
    monkeypatch.setattr(loader, "LIBRARY_DIR", tmp_path)
    loader.reset()
    assert load_kernels() is not None
    assert kernels_info().variant != info.variant
    assert any("could not load" in w for w in _warnings(caplog))


# ------------------------------------------------------------- no usable library at all


def _one_unavailable_warning(caplog: pytest.LogCaptureFixture, *parts: str) -> None:
    """Exactly one warning, saying so and how to fix it, and never a traceback."""
    assert load_kernels() is None and load_kernels() is None  # second call: no new warning
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert UNAVAILABLE in warnings[0] and "slower PyTorch ops" in warnings[0]
    for part in parts:
        assert part in warnings[0], warnings[0]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.WARNING)


def test_without_libraries_one_warning_says_how_to_get_them(
        fresh: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(loader, "LIBRARY_DIR", tmp_path)
    _one_unavailable_warning(caplog, "C compiler", "pip install -e .")
    assert "no library" in (kernels_info().reason or "")


def test_a_stale_library_is_not_used(fresh: None, k: Kernels, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    """A part of kernels.c changed since the build (an editable install, edited): not
    loaded."""
    for part in build.source_parts(loader.SOURCE):
        (tmp_path / part.name).write_bytes(part.read_bytes())
    assert build.read_source(tmp_path / "kernels.c") == build.read_source(loader.SOURCE)
    losses = tmp_path / "k_losses.c"
    losses.write_bytes(losses.read_bytes() + b"\n/* edited */\n")
    monkeypatch.setattr(loader, "SOURCE", tmp_path / "kernels.c")
    _one_unavailable_warning(caplog, "stale", "pip install -e .")
    assert "stale" in (kernels_info().reason or "")


def test_a_broken_generic_library_gives_one_warning(
        fresh: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    for threads in build.THREADINGS:
        (tmp_path / build.library_name("generic", threads)).write_bytes(b"\x7fELF broken")
    monkeypatch.setattr(loader, "LIBRARY_DIR", tmp_path)
    _one_unavailable_warning(caplog)


# ------------------------------------------------------------------------ the build


def test_a_failing_variant_does_not_drop_the_others(tmp_path: Path) -> None:
    _have_compiler()
    (tmp_path / build.library_name("old", "simd")).write_bytes(b"an earlier build")
    result = build.build_libraries(
        tmp_path, variant_flags={"generic": (), "broken": ("-mno-such-option",)},
        threadings=("simd",))
    assert [p.name for p in result.built] == [build.library_name("generic", "simd")]
    assert list(result.failed) == [build.library_name("broken", "simd")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # old build gone, no temp files
        build.library_name("generic", "simd")]
    warning = result.warning()
    assert warning is not None and "broken-simd" in warning and "the others" in warning
    lib = ctypes.CDLL(str(result.built[0]))
    lib.gru4rec_source_hash.restype = lib.gru4rec_variant.restype = ctypes.c_char_p
    digest = build.source_hash(build.read_source(build.SOURCE))
    assert lib.gru4rec_source_hash().decode() == digest
    assert lib.gru4rec_variant() == b"generic" and lib.gru4rec_openmp() == 0


def test_a_failing_compiler_builds_nothing_and_says_so(tmp_path: Path) -> None:
    result = build.build_libraries(tmp_path, compiler=["false"])  # always fails
    assert result.built == [] and len(result.failed) == len(build.variants()) * 2
    assert list(tmp_path.iterdir()) == []
    assert "could not compile the CPU kernels" in (result.warning() or "")


def test_a_missing_compiler_builds_nothing_and_says_so(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert build.find_compiler() is None
    result = build.build_libraries(tmp_path / "out")
    assert result.built == [] and result.failed == {}
    assert "no-such-cc' was not found" in (result.warning() or "")


# ------------------------------------------------------------- as a user runs it


def _unwritable_home(tmp_path: Path) -> Path:
    """A home folder no process can write to: read-only (0o555) where that binds; as
    root, which writes through permissions, a path under a regular file."""
    if os.geteuid() != 0:
        home = tmp_path / "home"
        home.mkdir()
        home.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP
                   | stat.S_IROTH | stat.S_IXOTH)
    else:
        (tmp_path / "file").write_text("")
        home = tmp_path / "file" / "home"
    with pytest.raises(OSError):  # it really is unwritable, for this user too
        (home / ".cache" / "gru4rec").mkdir(parents=True)
    return home


def test_training_works_with_a_read_only_home(tmp_path: Path, train_tiny: str,
                                              child: Any) -> None:
    home = _unwritable_home(tmp_path)
    try:
        proc = child(train_tiny, {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
                                  "GRU4REC_CACHE_DIR": None}, cwd=tmp_path)
    finally:
        if home.is_dir():
            home.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    # and on the installed kernels where there are some (not on a fallback)
    assert f"kernels {kernels_info().variant}" in proc.stdout, proc.stdout


def _wheel_capable_setuptools() -> bool:
    """Whether this environment's setuptools builds wheels by itself (>= 70.1) or with
    the wheel package, so that pip needs no isolated build environment."""
    try:
        import setuptools
    except ImportError:
        return False
    try:
        import wheel  # noqa: F401
        return True
    except ImportError:
        version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
        return version >= (70, 1)


@pytest.mark.slow
def test_installing_without_a_compiler_succeeds_and_trains_on_pytorch_ops(
        tmp_path: Path, train_tiny: str, child: Any) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "libgru4rec-*.so"))
    site = tmp_path / "site"
    # offline and faster without an isolated build environment, where this one can build
    no_isolation = ["--no-build-isolation"] if _wheel_capable_setuptools() else []
    cc = str(tmp_path / "no-such-cc")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-v", "--no-deps", *no_isolation,
         "--target", str(site), str(project)],
        env={**os.environ, "CC": cc}, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert f"WARNING: gru4rec: the C compiler CC='{cc}' was not found" in output, output[-3000:]
    assert list((site / "gru4rec" / "kernels").glob("libgru4rec-*")) == []
    assert (site / "gru4rec" / "kernels" / "kernels.c").is_file()
    assert (site / "gru4rec" / "kernels" / "k_losses.c").is_file()

    proc = child(train_tiny, {"PYTHONPATH": str(site), "GRU4REC_NATIVE": None,
                              "CC": cc}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"module {site / 'gru4rec' / '__init__.py'}" in proc.stdout  # the copy ran
    assert "kernels None" in proc.stdout
    assert proc.stderr.count(UNAVAILABLE) == 1, proc.stderr
