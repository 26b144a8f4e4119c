"""Install-time build of the CPU kernels: kernels.c compiled into plain shared libraries.

``setup.py`` loads this file by its path (the build runs without torch and before gru4rec
is importable), and the loader imports it for the library names and the source hash, so it
imports nothing but the standard library. Run as a script (``python build.py [DIR]``) it
builds the libraries into DIR (default: next to this file), as an editable install does.

The libraries never target the build machine's CPU (no ``-march=native``): on x86-64 there
are three variants, chosen at run time by what the CPU supports, and each comes in two
threading flavours (see :data:`THREADINGS`). Every library embeds the SHA-256 of the source
it was built from, so the loader can refuse one that is older than kernels.c.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "FLAGS",
    "SOURCE",
    "THREADINGS",
    "BuildResult",
    "build_libraries",
    "find_compiler",
    "library_name",
    "remove_libraries",
    "source_hash",
    "variants",
]

SOURCE = Path(__file__).with_name("kernels.c")

# -ffp-contract=off: no implicit multiply-add, so results do not vary with the compiler;
# -fno-math-errno: lets sqrtf vectorise.
FLAGS = ("-O3", "-fPIC", "-shared", "-std=c11", "-ffp-contract=off", "-fno-math-errno")
LIBS = ("-lm",)

# Variants by preference, worst first; the loader picks the best one the CPU can run.
X86_64_VARIANTS: Mapping[str, tuple[str, ...]] = {
    "generic": ("-march=x86-64",),
    "avx2": ("-march=x86-64-v3",),  # AVX2, FMA, BMI2
    "avx512": ("-march=x86-64-v4",),  # AVX-512 F/BW/CD/DQ/VL
}
OTHER_VARIANTS: Mapping[str, tuple[str, ...]] = {"generic": ()}

# -fopenmp: the loss and row-update kernels split their rows over threads. The loader uses
# it only when the process runs GNU OpenMP (PyTorch's Linux wheels load libgomp.so.1): the
# library then binds to that very runtime and shares its thread pool. Elsewhere two
# runtimes would fight over the cores, so -fopenmp-simd honours the simd pragmas only,
# single-threaded.
THREADINGS: Mapping[str, tuple[str, ...]] = {
    "openmp": ("-fopenmp",),
    "simd": ("-fopenmp-simd",),
}

_PREFIX, _SUFFIX = "libgru4rec-", ".so"
_TIMEOUT_S = 300


def is_x86_64(machine: str | None = None) -> bool:
    """Whether ``machine`` (default: this one, as :func:`platform.machine` names it) is
    x86-64."""
    return (machine if machine is not None else platform.machine()).lower() in (
        "x86_64", "amd64")


def variants(machine: str | None = None) -> Mapping[str, tuple[str, ...]]:
    """The variants built for ``machine`` (default: this one) and their -march flags,
    worst first."""
    return X86_64_VARIANTS if is_x86_64(machine) else OTHER_VARIANTS


def library_name(variant: str, threading: str) -> str:
    """File name of the library of one variant and threading flavour."""
    return f"{_PREFIX}{variant}-{threading}{_SUFFIX}"


def parse_library_name(name: str) -> tuple[str, str] | None:
    """(variant, threading) of a file named by :func:`library_name`, else None."""
    if not (name.startswith(_PREFIX) and name.endswith(_SUFFIX)):
        return None
    variant, _, threading = name[len(_PREFIX):-len(_SUFFIX)].rpartition("-")
    return (variant, threading) if variant and threading in THREADINGS else None


def source_parts(source: Path) -> list[Path]:
    """``source`` and the ``k_*.h`` / ``k_*.c`` parts it includes (same folder), in a fixed
    order: everything a library is built from."""
    parts = sorted(p for p in source.parent.glob("k_*") if p.suffix in (".c", ".h"))
    return [source, *parts]


def read_source(source: Path) -> bytes:
    """The bytes of every file of :func:`source_parts`, with their names, for hashing.

    Raises:
        OSError: a part cannot be read.
    """
    return b"\0".join(p.name.encode() + b"\0" + p.read_bytes() for p in source_parts(source))


def source_hash(source: bytes) -> str:
    """The hash a library built from ``source`` (see :func:`read_source`) embeds (hex
    SHA-256)."""
    return hashlib.sha256(source).hexdigest()


def find_compiler(environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The C compiler command: ``$CC`` (may hold arguments, e.g. ``ccache gcc``) if set,
    else the first of cc, gcc and clang on the PATH; None when it cannot be found."""
    env = os.environ if environ is None else environ
    if env.get("CC", "").strip():
        argv = shlex.split(env["CC"])
        return argv if shutil.which(argv[0]) else None
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path is not None:
            return [path]
    return None


def remove_libraries(directory: Path) -> None:
    """Delete the kernel libraries in ``directory`` (an earlier build's), if any."""
    if directory.is_dir():
        for path in directory.iterdir():
            if parse_library_name(path.name) is not None:
                path.unlink()


@dataclass
class BuildResult:
    """What :func:`build_libraries` produced.

    Attributes:
        compiler: the compiler command used, or None when none was found.
        cc_env: ``$CC`` at build time ("" when unset).
        built: paths of the libraries built.
        failed: library name -> the compiler's error (its last lines).
    """

    compiler: list[str] | None
    cc_env: str = ""
    built: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def warning(self) -> str | None:
        """One line for the person installing when a library is missing, else None."""
        if self.compiler is None:
            cc = self.cc_env.strip()
            which = (f"the C compiler CC={cc!r} was not found" if cc
                     else "no C compiler found (cc, gcc, clang)")
            return (f"WARNING: gru4rec: {which}: installing without the compiled CPU "
                    "kernels, so CPU training runs on the slower PyTorch ops. Install gcc "
                    "or clang and reinstall gru4rec to get them.")
        if not self.failed:
            return None
        names = ", ".join(sorted(self.failed))
        lines = next(iter(self.failed.values())).splitlines() or ["no output"]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[-1]).strip()
        if not self.built:
            return (f"WARNING: gru4rec: could not compile the CPU kernels with "
                    f"{shlex.join(self.compiler)} ({detail}): installing without them, so "
                    "CPU training runs on the slower PyTorch ops. Fix the compiler and "
                    "reinstall gru4rec to get them.")
        return (f"WARNING: gru4rec: could not compile the CPU kernel libraries {names} "
                f"({detail}): installing the others.")

    def summary(self) -> str:
        """One line naming the libraries built."""
        names = ", ".join(p.name for p in self.built) or "none"
        return f"gru4rec: built the CPU kernel libraries: {names}"


def _compile(cc: Sequence[str], source: Path, target: Path, flags: Sequence[str]
             ) -> str | None:
    """Compile ``source`` into ``target`` (atomically); the error text, or None."""
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=_SUFFIX, dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run([*cc, *flags, str(source), "-o", tmp, *LIBS],
                              capture_output=True, text=True, timeout=_TIMEOUT_S)
        if proc.returncode != 0:
            return (proc.stderr or proc.stdout).strip()[-2000:] or f"exit {proc.returncode}"
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_libraries(out_dir: Path, *, source: Path = SOURCE,
                    compiler: Sequence[str] | None = None,
                    variant_flags: Mapping[str, Sequence[str]] | None = None,
                    threadings: Sequence[str] = tuple(THREADINGS),
                    jobs: int | None = None) -> BuildResult:
    """Compile every variant and threading flavour of ``source`` into ``out_dir``.

    Earlier libraries there are removed first, so the directory holds exactly what this
    build produced. A compile that fails is recorded and the others go on. ``compiler``
    defaults to :func:`find_compiler`, ``variant_flags`` to :func:`variants`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_libraries(out_dir)
    cc = list(compiler) if compiler is not None else find_compiler()
    result = BuildResult(cc, os.environ.get("CC", ""))
    if cc is None:
        return result
    digest = source_hash(read_source(source))
    tasks = []
    for variant, arch in (variant_flags or variants()).items():
        for threading in threadings:
            flags = [*FLAGS, *arch, *THREADINGS[threading],
                     f'-DGRU4REC_SOURCE_HASH="{digest}"', f'-DGRU4REC_VARIANT="{variant}"']
            tasks.append((out_dir / library_name(variant, threading), flags))
    workers = max(1, min(len(tasks), jobs or os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        errors = list(pool.map(lambda task: _compile(cc, source, *task), tasks))
    for (target, _), error in zip(tasks, errors, strict=True):
        if error is None:
            result.built.append(target)
        else:
            result.failed[target.name] = error
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Build into ``argv[0]`` (default: this package's folder) and report; exit code 0
    even when no library could be built (the package works without them)."""
    args = list(sys.argv[1:] if argv is None else argv)
    result = build_libraries(Path(args[0]) if args else SOURCE.parent)
    if result.built:
        print(result.summary())
    warning = result.warning()
    if warning:
        print(warning, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
