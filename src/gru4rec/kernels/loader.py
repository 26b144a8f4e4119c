"""Loading the kernel libraries that the install built: once per process, the best variant
the CPU runs (or the one ``GRU4REC_KERNELS`` asks for), never a library older than its
source. Nothing is compiled or written here.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gru4rec.kernels import build, selection
from gru4rec.kernels.wrappers import Kernels

__all__ = ["ENV_NATIVE", "LIBRARY_DIR", "SOURCE", "KernelsInfo", "kernels_info",
           "load_kernels", "reset"]

log = logging.getLogger("gru4rec.kernels")

ENV_NATIVE = "GRU4REC_NATIVE"
# Where the install put the libraries, and the source they must have been built from.
# Tests may point these elsewhere (then call reset()).
LIBRARY_DIR = Path(__file__).resolve().parent
SOURCE = LIBRARY_DIR / "kernels.c"

_GET_THEM = ("To get them, install a C compiler (gcc or clang), then reinstall gru4rec "
             "(`pip install -e .` in its source folder).")
_REBUILD = "Reinstall with `pip install -e .` (in the source folder) to rebuild them."


@dataclass(frozen=True)
class KernelsInfo:
    """What :func:`load_kernels` found.

    Attributes:
        variant: the variant loaded (``generic``, ``avx2``, ``avx512``), None when none was.
        threading: ``openmp`` (threads of PyTorch's own GNU OpenMP pool) or ``simd``
            (single-threaded), None when nothing was loaded.
        path: the library loaded.
        reason: why no library was loaded, None when one was.
        supported: the variants this CPU can run, worst first (empty when not known).
        installed: the variants whose libraries are installed, worst first.
    """

    variant: str | None = None
    threading: str | None = None
    path: Path | None = None
    reason: str | None = None
    supported: tuple[str, ...] = ()
    installed: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        """Whether kernels were loaded."""
        return self.variant is not None

    def __str__(self) -> str:
        cpu = f"CPU supports: {', '.join(self.supported) or 'unknown'}; installed: " \
              f"{', '.join(self.installed) or 'none'}"
        if self.available:
            return f"{self.variant} kernels ({self.threading}) from {self.path} ({cpu})"
        return f"no kernels: {self.reason} ({cpu})"


class _Unavailable(Exception):
    """No library can be used: ``reason`` and how to fix it (``fix``)."""

    def __init__(self, reason: str, fix: str = _GET_THEM,
                 supported: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason, self.fix, self.supported = reason, fix, supported


_lock = threading.Lock()
_cached: tuple[Kernels | None, KernelsInfo] | None = None


def _installed(directory: Path) -> dict[tuple[str, str], Path]:
    """(variant, threading) -> path of the libraries in ``directory``."""
    found: dict[tuple[str, str], Path] = {}
    if directory.is_dir():
        for path in directory.iterdir():
            key = build.parse_library_name(path.name)
            if key is not None:
                found[key] = path
    return found


def _variants_of(found: dict[tuple[str, str], Path]) -> tuple[str, ...]:
    """The variants among ``found`` (either threading flavour), worst first."""
    return tuple(v for v in build.variants() if any(key[0] == v for key in found))


def _open(path: Path, digest: str, variant: str, threads: str) -> ctypes.CDLL:
    """Load one library and check that it is the build of ``digest`` it should be."""
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:  # not a library, or one for another machine
        text = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        raise _Unavailable(f"cannot load {text}", _REBUILD) from None
    try:
        for name, restype in (("gru4rec_source_hash", ctypes.c_char_p),
                              ("gru4rec_variant", ctypes.c_char_p),
                              ("gru4rec_openmp", ctypes.c_int),
                              ("gru4rec_x86_level", ctypes.c_int)):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, []
    except AttributeError:
        raise _Unavailable(f"{path} predates this version of gru4rec", _REBUILD) from None
    if (lib.gru4rec_source_hash() or b"").decode() != digest:
        raise _Unavailable(f"the libraries in {path.parent} are stale: kernels.c has changed "
                           "since they were built", _REBUILD)
    if (lib.gru4rec_variant() or b"").decode() != variant or bool(
            lib.gru4rec_openmp()) != (threads == "openmp"):
        raise _Unavailable(f"{path} is not the {variant} ({threads}) build its name says",
                           _REBUILD)
    return lib


def _order(chosen: str, supported: Sequence[str], installed: Sequence[str]) -> list[str]:
    """``chosen``, then the other usable variants from the best down."""
    rest = [v for v in reversed(supported) if v in installed and v != chosen]
    return [chosen, *rest]


def _load(directory: Path, source: Path) -> tuple[Kernels, KernelsInfo]:
    """Pick, load and check a library; raises _Unavailable."""
    found = _installed(directory)
    installed = _variants_of(found)
    if not found:
        raise _Unavailable(f"no library in {directory}: it was installed without them (no "
                           "C compiler at install time?)")
    threads = selection.choose_threading([t for _, t in found])
    if threads is None:
        raise _Unavailable("only OpenMP builds are installed, and this process does not run "
                           "GNU OpenMP")
    try:
        digest = build.source_hash(build.read_source(source))
    except OSError as exc:
        raise _Unavailable(f"cannot read {source} to check the libraries against it "
                           f"({exc.strerror or exc})", _REBUILD) from None
    probe_path = found.get(("generic", threads))
    if probe_path is None:  # it tells which variants the CPU runs: nothing goes without it
        raise _Unavailable(f"the generic library is missing from {directory}")
    probe = _open(probe_path, digest, "generic", threads)
    supported = selection.supported_variants(int(probe.gru4rec_x86_level()))
    here = [v for v, t in found if t == threads]
    variant, warning = selection.choose_variant(os.environ.get(selection.ENV_VARIANT),
                                                supported, here)
    if warning:
        log.warning(warning)
    if variant is None:  # cannot happen while the generic library loads, kept for safety
        raise _Unavailable("no installed variant runs on this CPU", supported=supported)
    for candidate in _order(variant, supported, here):
        path = found[(candidate, threads)]
        try:
            lib = probe if candidate == "generic" else _open(path, digest, candidate, threads)
            kernels = Kernels(lib)
        except (_Unavailable, AttributeError) as exc:  # a damaged file: try the next one
            log.warning("could not load the %s CPU kernels from %s (%s): trying the next",
                        candidate, path, exc)
            continue
        return kernels, KernelsInfo(candidate, threads, path, None, supported, installed)
    raise _Unavailable(f"none of the libraries in {directory} could be loaded",
                       supported=supported)


def _state() -> tuple[Kernels | None, KernelsInfo]:
    """The cached outcome, loading under the lock on first use (one warning if none)."""
    global _cached
    state = _cached
    if state is not None:
        return state
    with _lock:
        if _cached is None:
            try:
                kernels, info = _load(LIBRARY_DIR, SOURCE)
                _cached = kernels, info
                log.info("CPU kernels: %s", info)
            except _Unavailable as exc:
                _cached = None, KernelsInfo(reason=exc.reason, supported=exc.supported,
                                            installed=_variants_of(_installed(LIBRARY_DIR)))
                log.warning("the compiled CPU kernels are unavailable (%s): training runs on "
                            "the slower PyTorch ops. %s", exc.reason, exc.fix)
            except Exception as exc:  # noqa: BLE001 - a broken install must not stop training
                log.debug("loading the CPU kernels failed", exc_info=True)
                _cached = None, KernelsInfo(reason=f"loading failed: {exc!r}")
                log.warning("the compiled CPU kernels could not be loaded (%r): training runs "
                            "on the slower PyTorch ops. %s", exc, _REBUILD)
        return _cached


def load_kernels() -> Kernels | None:
    """The compiled CPU kernels, loaded on the first call (thread-safe; later calls return
    the same object); None when they are switched off (``GRU4REC_NATIVE=0``) or
    unavailable (then the first call logs one warning saying why and how to get them)."""
    if os.environ.get(ENV_NATIVE, "1") == "0":
        return None
    return _state()[0]


def kernels_info() -> KernelsInfo:
    """What :func:`load_kernels` loaded, or why it loaded nothing (loads on first call)."""
    if os.environ.get(ENV_NATIVE, "1") == "0":
        return KernelsInfo(reason=f"switched off by {ENV_NATIVE}=0")
    return _state()[1]


def reset() -> None:
    """Forget what was loaded, so that the next call loads (and warns) again: the seam for
    tests, e.g. after changing ``GRU4REC_KERNELS``, :data:`LIBRARY_DIR` or :data:`SOURCE`.
    Libraries already loaded stay mapped in the process."""
    global _cached
    with _lock:
        _cached = None
