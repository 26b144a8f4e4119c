"""Build hook of the gru4rec package (all metadata lives in pyproject.toml).

It compiles the CPU kernels (src/gru4rec/kernels/kernels.c) into plain shared libraries
that gru4rec.kernels loads with ctypes; they are not Python extension modules. Wheels carry
them in gru4rec/kernels/, editable installs put them next to the source. Without a working
C compiler the install still succeeds, without the libraries, after one warning.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
PACKAGE = "gru4rec.kernels"
SOURCE = "src/gru4rec/kernels/kernels.c"  # setup.py paths: relative, with slashes
PACKAGE_DIR = Path(SOURCE).parent


def _load_build_module() -> ModuleType:
    """src/gru4rec/kernels/build.py, loaded by path (neither gru4rec nor torch is importable
    in an isolated build)."""
    name = "_gru4rec_kernels_build"
    spec = importlib.util.spec_from_file_location(name, HERE / PACKAGE_DIR / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class BuildKernels(build_ext):
    """``build_ext`` that compiles the kernel libraries instead of extension modules.

    The single placeholder extension only makes setuptools run this command (and tag the
    wheel for the platform); nothing is built for it. In place (``--inplace``, editable
    installs) the libraries are also copied into the package's source folder.
    """

    def initialize_options(self) -> None:
        super().initialize_options()
        self._outputs: list[str] = []
        self._mapping: dict[str, str] = {}

    def run(self) -> None:
        build = _load_build_module()
        out_dir = Path(self.build_lib, *PACKAGE.split("."))
        result = build.build_libraries(out_dir, source=HERE / SOURCE)
        if result.built:
            print(result.summary())
        warning = result.warning()
        if warning:
            print(warning, file=sys.stderr, flush=True)
        self._outputs = [str(p) for p in result.built]
        if self.inplace or getattr(self, "editable_mode", False):
            package_dir = Path(self.get_finalized_command("build_py").get_package_dir(PACKAGE))
            build.remove_libraries(package_dir)  # never leave an older build behind
            for path in result.built:
                shutil.copy2(path, package_dir / path.name)
                self._mapping[str(path)] = str(package_dir / path.name)

    def get_outputs(self) -> list[str]:
        return list(self._outputs)

    def get_output_mapping(self) -> dict[str, str]:
        return dict(self._mapping)

    def get_source_files(self) -> list[str]:
        return [SOURCE, *(f"{PACKAGE_DIR.as_posix()}/{p.name}"
                          for p in sorted((HERE / PACKAGE_DIR).glob("k_*")))]


setup(
    ext_modules=[Extension(f"{PACKAGE}._libraries", sources=[SOURCE])],
    cmdclass={"build_ext": BuildKernels},
)
