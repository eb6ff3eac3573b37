"""The ``ocrpool`` command: parses arguments and prints; every behaviour lives in the library."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

import ocrpool
from ocrpool.cli import doctor, models, run, serve
from ocrpool.cli.conventions import HelpFormatter, add_output_options, epilog, log_level
from ocrpool.error_codes import ExitCode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrpool",
        description="Leak-proof OCR in recycled worker processes.",
        formatter_class=HelpFormatter,
        epilog=epilog(
            [
                ("ocrpool run scans/ -o results.jsonl", "OCR a folder; rerun to resume"),
                ("ocrpool serve --workers 2", "an OCR service on 127.0.0.1:8000"),
                ("ocrpool COMMAND --help", "a command's flags, examples and exit codes"),
            ],
            ExitCode,
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {ocrpool.__version__}",
    )
    add_output_options(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.register(commands)
    serve.register(commands)
    doctor.register(commands)
    models.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_format = "%(asctime)s %(name)s %(levelname)s %(message)s"
    logging.basicConfig(level=log_level(args), format=log_format)
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
