"""Which kernel library to load: the variant (by the CPU's instruction sets, or forced with
``GRU4REC_KERNELS``) and the threading flavour (by the process's OpenMP runtime)."""

from __future__ import annotations

from collections.abc import Sequence

from gru4rec.kernels.build import is_x86_64, variants

__all__ = ["ENV_VARIANT", "choose_variant", "choose_threading", "process_uses_gomp",
           "supported_variants"]

ENV_VARIANT = "GRU4REC_KERNELS"

# the x86-64 microarchitecture level (gru4rec_x86_level in kernels.c) each variant needs
_X86_LEVEL = {"generic": 1, "avx2": 3, "avx512": 4}


def supported_variants(x86_level: int, machine: str | None = None) -> tuple[str, ...]:
    """The variants this CPU can run, worst first, from the level the generic library
    reports (``gru4rec_x86_level``); only ``generic`` off x86-64."""
    if not is_x86_64(machine):
        return ("generic",)
    return tuple(v for v in variants(machine) if _X86_LEVEL.get(v, 99) <= max(x86_level, 1))


def choose_variant(forced: str | None, supported: Sequence[str], installed: Sequence[str]
                   ) -> tuple[str | None, str | None]:
    """(variant to load, warning or None).

    ``forced`` is ``$GRU4REC_KERNELS`` (None or "" for the default: the best variant that
    is both supported and installed). A forced variant the CPU cannot run, or that is not
    installed, falls back to that default with a warning; a variant the CPU cannot run is
    never returned. None when no supported variant is installed.
    """
    usable = [v for v in supported if v in installed]
    best = usable[-1] if usable else None
    name = (forced or "").strip().lower()
    if not name:
        return best, None
    known = tuple(variants())
    instead = f"using {best}" if best else "no other variant is installed"
    if name not in known:
        return best, (f"{ENV_VARIANT}={forced!r} is not a kernel variant of this machine "
                      f"({', '.join(known)}): {instead}")
    if name not in supported:
        return best, (f"{ENV_VARIANT}={name}: this CPU cannot run the {name} kernels "
                      f"(it supports {', '.join(supported)}): {instead}")
    if name not in installed:
        return best, (f"{ENV_VARIANT}={name}: the {name} kernels are not installed (their "
                      f"build failed?): {instead}")
    return name, None


def process_uses_gomp() -> bool:
    """Whether this process has GNU OpenMP loaded (by PyTorch), so that a library built with
    -fopenmp binds to that same runtime and thread pool."""
    try:
        with open("/proc/self/maps") as fh:
            return any("libgomp" in line for line in fh)
    except OSError:  # not Linux
        return False


def choose_threading(installed: Sequence[str]) -> str | None:
    """The threading flavour to load among ``installed``: ``openmp`` only when the process
    runs GNU OpenMP (a second OpenMP runtime would fight PyTorch's for the cores), else
    ``simd``; None when neither fits."""
    if "openmp" in installed and process_uses_gomp():
        return "openmp"
    return "simd" if "simd" in installed else None
