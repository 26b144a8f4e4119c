"""The ``gru4rec`` command: argument parsing, logging set-up and error-to-exit-code mapping.

Subcommands live in one module each (``run``, ``compare``, ``report``, ``demo``,
``preprocess``, ``recommend``, ``serve``, ``tune``); each exposes ``add_parser(subparsers)`` and
``execute(args) -> int`` and imports the heavy parts of the library (torch) inside
``execute`` only.

Exit codes: 0 success, 2 bad usage, any :class:`~gru4rec.errors.GRU4RecError` or a file the
system cannot read or write (an ``OSError``: disk full, permissions; the message names the
file and how to fix it), each reported as one ``error: ...`` line on stderr, never a
traceback; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import sys
from collections.abc import Sequence

from gru4rec.cli import compare, demo, preprocess, recommend, report, run, serve, tune
from gru4rec.cli.arguments import EXIT_USAGE, Parser

__all__ = ["build_parser", "main"]

EXIT_INTERRUPTED = 130
_HANDLER_NAME = "gru4rec-cli"
_OS_ERROR_FIXES = {  # errno -> how to fix it
    errno.ENOSPC: "free some space on that disk, or choose a folder on another disk",
    errno.EACCES: "check its permissions, or choose another folder",
    errno.EPERM: "check its permissions, or choose another folder",
    errno.EROFS: "that file system is read-only; choose a folder on another disk",
}
if hasattr(errno, "EDQUOT"):  # not on Windows
    _OS_ERROR_FIXES[errno.EDQUOT] = ("free some space within your disk quota, or choose a "
                                     "folder on another disk")


def _version() -> str:
    from gru4rec import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The full ``gru4rec`` argument parser (subcommands included)."""
    parser = Parser(
        prog="gru4rec",
        description="GRU4Rec session-based recommendations: train, evaluate and try out "
                    "GRU4Rec models from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in (run, compare, report, demo, preprocess, recommend, serve, tune):
        sub = module.add_parser(subparsers)
        sub.add_argument("-v", "--verbose", action="store_true",
                         help="Show informational log messages of the library (INFO level).")
        sub.set_defaults(execute=module.execute)
    return parser


def _configure_logging(verbose: bool) -> None:
    """Send the library's log records to stderr: WARNING and up, or INFO with -v."""
    logger = logging.getLogger("gru4rec")
    for handler in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(handler)  # a previous main() call in the same process
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(_LowerLevelFormatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


class _LowerLevelFormatter(logging.Formatter):
    """``warning: message`` rather than ``WARNING: message``."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace(record.levelname, record.levelname.lower(), 1)


def _os_error_message(exc: OSError) -> str:
    """``reason: file[ -> file2]; fix`` for a failed read or write."""
    if exc.errno is None or exc.strerror is None:
        return str(exc)
    files = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    message = f"{exc.strerror}: {files}" if files else exc.strerror
    fix = _OS_ERROR_FIXES.get(exc.errno)
    return f"{message}; {fix}" if fix else message


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gru4rec`` command with ``argv`` (default: ``sys.argv[1:]``); return the
    exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    _configure_logging(args.verbose)
    args.argv = ["gru4rec", *(sys.argv[1:] if argv is None else argv)]  # for run reports
    from gru4rec.errors import GRU4RecError

    try:
        return int(args.execute(args))
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.write("\nerror: interrupted\n")
        return EXIT_INTERRUPTED
    except GRU4RecError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:  # the user's environment (disk full, permissions), not a bug
        with contextlib.suppress(OSError):  # stdout may be the failing file (a closed pipe)
            sys.stdout.flush()
        sys.stderr.write(f"error: {_os_error_message(exc)}\n")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
