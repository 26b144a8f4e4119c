"""What the subcommands share: the parser class, its type, and argparse ``type=`` callables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn, TypeAlias

__all__ = ["EXIT_USAGE", "Parser", "Subparsers", "add_column_arguments", "add_model_argument",
           "at_least", "positive_int"]

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one ``error: ...`` line (exit code 2); the
    subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


# what ``add_parser(subparsers)`` of every subcommand receives
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """The positional MODEL argument of the commands that use a saved model."""
    parser.add_argument("model", metavar="MODEL",
                        help="A model file saved with 'gru4rec run -s'.")


def add_column_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The -ik/-sk/-tk options naming the item, session and time columns of event files."""
    parser.add_argument("-ik", "--item_key", default="ItemId",
                        help="Column holding the item ids. (Default: ItemId)")
    parser.add_argument("-sk", "--session_key", default="SessionId",
                        help="Column holding the session ids. (Default: SessionId)")
    parser.add_argument("-tk", "--time_key", default="Time",
                        help="Column holding the event times. (Default: Time)")


def at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``minimum`` (a usage error otherwise)."""
    def convert(text: str) -> int:
        return _bounded_int(text, minimum, "an integer", f"an integer >= {minimum}")
    return convert


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a usage error otherwise)."""
    return _bounded_int(text, 1, "a positive integer", "a positive integer")


def _bounded_int(text: str, minimum: int, integer: str, bounded: str) -> int:
    """``int(text)`` if it is >= ``minimum``; else a usage error "expected <integer> / <bounded>,
    got ..." (for text that is no integer / an integer that is too small)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {integer}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {bounded}, got {value}")
    return value
