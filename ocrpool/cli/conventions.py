"""What every ``ocrpool`` command shares: ``-v``/``-q``/``--log-level`` before or after
the command's name, a ``--help`` that ends with examples and the exit codes, and a pool's
break said once.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any

from ocrpool.error_codes import ExitCode
from ocrpool.pool.lifecycle import BREAK_RECORD

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-line texts as usual; a text with line breaks (an epilog) is kept as
    written, so its examples and its table of exit codes stay aligned."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def finite_number(text: str) -> float:
    """A flag's number: ``inf`` and ``nan`` are refused here, named by their flag, where
    the setting behind it would name itself."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds above 0 (0 or ``nan`` would mean no limit, or none)."""
    value = finite_number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    return value


def seconds(text: str) -> float:
    """A finite number of seconds, 0 or more: ``nan`` and ``inf`` would mean never."""
    value = finite_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, not {text}")
    return value


def add_output_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """``-v``, ``-q`` and ``--log-level``. Below the top level their defaults are left out
    (``SUPPRESS``), so a flag given before the command's name is not reset after it."""

    def default(value: Any) -> Any:
        return value if top_level else argparse.SUPPRESS

    group = parser.add_argument_group("output")
    group.add_argument(
        "-v", "--verbose", action="count", default=default(0), help="more log output (-vv: debug)"
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="errors only: no progress, no summary, no log below ERROR",
    )
    group.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=default(None),
        metavar="LEVEL",
        help=f"log level: {', '.join(LOG_LEVELS)} (default: WARNING; wins over -v and -q)",
    )


def log_level(args: argparse.Namespace) -> int:
    """``--log-level`` if given, else ERROR with ``-q``, else WARNING lowered by each ``-v``."""
    if args.log_level is not None:
        name: str = args.log_level
        return logging.getLevelNamesMapping()[name]
    if args.quiet:
        return logging.ERROR
    verbose: int = args.verbose
    return logging.WARNING - 10 * min(verbose, 2)


def epilog(examples: Iterable[tuple[str, str]], codes: Iterable[ExitCode]) -> str:
    """The end of a command's ``--help``: examples (command line, what it does), then the
    exit codes it can return, with their descriptions from ``ExitCode``."""
    lines = ["examples:"]
    for command, what in examples:
        lines += [f"  $ {command}", f"      {what}"]
    lines += ["", "exit codes:"]
    lines += [f"  {int(code):>3}  {code.description}" for code in codes]
    return "\n".join(lines) + "\n"


def add_command(
    commands: Any,
    name: str,
    *,
    examples: Iterable[tuple[str, str]],
    codes: Iterable[ExitCode],
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A command's parser, with the output options and the epilog every command has."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, formatter_class=HelpFormatter, epilog=epilog(examples, codes), **kwargs
    )
    add_output_options(parser, top_level=False)
    return parser


@contextlib.contextmanager
def break_told_once() -> Iterator[None]:
    """Drop the local pool's own log of its break: ``ocrpool run`` ends with that error and
    prints it with what to do next, and ``ocrpool serve`` logs it as the service's state."""
    logger = logging.getLogger("ocrpool")
    logger.addFilter(_not_the_break)
    try:
        yield
    finally:
        logger.removeFilter(_not_the_break)


def _not_the_break(record: logging.LogRecord) -> bool:
    return not getattr(record, BREAK_RECORD, False)
