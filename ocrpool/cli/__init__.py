"""The ``ocrpool`` command: parses arguments and prints; every behaviour lives in the library."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from ocrpool.cli import doctor, models, run, serve
from ocrpool.error_codes import ExitCode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrpool",
        description="Leak-proof OCR in recycled worker processes.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.register(commands)
    serve.register(commands)
    doctor.register(commands)
    models.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    code: int = args.handler(args)
    return code


def entry_point() -> None:
    code = main()
    # The command's work is done; a stop signal during the interpreter's exit
    # (multiprocessing's clean-up) would only turn its exit code into a kill.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(code)


__all__ = ["ExitCode", "build_parser", "entry_point", "main"]
