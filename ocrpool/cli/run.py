"""``ocrpool run``: OCR files, folders and glob patterns into JSON Lines, SQLite or text,
and each input into the documents asked for with ``--export``.

Parses and prints only; the run itself is ``ocrpool.batch.run_batch``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from typing import Any

from ocrpool.batch import (
    BatchOptions,
    Outcome,
    OutputFormat,
    StopSignals,
    make_progress,
    run_batch,
)
from ocrpool.batch.progress import DEFAULT_INTERVAL_S
from ocrpool.batch.sinks import STDOUT
from ocrpool.cli.conventions import add_command, break_told_once, seconds
from ocrpool.cli.pool_options import (
    add_backend_arguments,
    add_max_pixels_argument,
    add_pool_arguments,
    backend_options,
    max_pixels,
    pool_factory,
    pool_options,
)
from ocrpool.error_codes import ExitCode, exit_code_of
from ocrpool.errors import OcrPoolError
from ocrpool.exports import ExportFormat, parse_formats
from ocrpool.processes import CWD_ADVICE, cwd_problem

_EXIT_CODES = {
    Outcome.OK: ExitCode.OK,
    Outcome.SOME_FAILED: ExitCode.SOME_FAILED,
    Outcome.INTERRUPTED: ExitCode.INTERRUPTED,
    Outcome.TOO_MANY_FAILURES: ExitCode.TOO_MANY_FAILURES,
}

_ADVICE = {
    ExitCode.OUTPUT_FAILED: (
        "every record written is whole",
        "the same command resumes once the output can be written",
    ),
    ExitCode.ENGINE_UNAVAILABLE: (
        "nothing more could be OCRed",  # a failed start's own message names the doctor
        "the same command then resumes",
    ),
}
"""What to do next, by the exit code of the error that ended the run: what is left, and
how to go on."""
_NO_RESUME = "a rerun does every input again (standard output keeps no ledger)"


def register(commands: Any) -> None:
    parser = add_command(
        commands,
        "run",
        examples=[
            ("ocrpool run scans/ -o results.jsonl", "OCR a folder; the same command resumes"),
            (
                "find scans -name '*.tif' -print0 | ocrpool run --from-list - -0 -o r.jsonl",
                "the files find lists, whatever their names",
            ),
            (
                "ocrpool run 'scans/**/*.pdf' -o results.db --format sqlite --export pdf",
                "into SQLite, and a searchable PDF of each input",
            ),
        ],
        codes=ExitCode,
        help="OCR files, folders and glob patterns; resumable",
        description="OCR every image and PDF in INPUTs (files, folders walked recursively, "
        "glob patterns) into one record per input. Running the same command again "
        "skips what is already recorded.",
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="file, folder or glob pattern")
    parser.add_argument(
        "--from-list", metavar="FILE", help="read input paths from FILE, one per line (- = stdin)"
    )
    parser.add_argument(
        "-0",
        "--null",
        action="store_true",
        help="with --from-list: paths end with a NUL byte, not a newline (find -print0)",
    )
    parser.add_argument(
        "-o",
        "--out",
        required=True,
        help="output file (jsonl, sqlite) or folder (txt); - writes JSON Lines to standard "
        "output (progress and summary go to standard error), which keeps no ledger: "
        "a rerun does every input again",
    )
    parser.add_argument(
        "--format",
        choices=[f.value for f in OutputFormat],
        default=OutputFormat.JSONL.value,
        help="jsonl, sqlite, or txt (a folder of .txt files) (default: %(default)s)",
    )
    parser.add_argument(
        "--detail", action="store_true", help="add lines with boxes and confidences to records"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="record non-image files as failures, not skips, and fail inputs with a page "
        "without text",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="OCR inputs that failed in an earlier run"
    )
    parser.add_argument(
        "--max-failures",
        type=int,
        metavar="N",
        help="stop the run after N inputs in a row failed (a success resets the count); "
        "the same command then goes on with the rest (default: never)",
    )
    add_max_pixels_argument(parser)
    parser.add_argument(
        "--allow-out-inside-input",
        action="store_true",
        help="allow --out inside an input folder",
    )
    parser.add_argument(
        "--progress-interval",
        type=seconds,
        default=DEFAULT_INTERVAL_S,
        metavar="SECONDS",
        help="time between progress lines when stderr is not a terminal (default: %(default)s)",
    )
    group = parser.add_argument_group("exports")
    group.add_argument(
        "--export",
        metavar="FORMATS",
        help="also write each input as these documents, comma-separated: "
        + ", ".join(f.value for f in ExportFormat),
    )
    group.add_argument(
        "--export-dir",
        metavar="DIR",
        help="folder of the exports, mirroring the input paths "
        "(default: next to --out, e.g. results-exports for results.jsonl)",
    )
    add_pool_arguments(parser)
    add_backend_arguments(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.inputs and args.from_list is None:
        return _usage("give at least one INPUT or --from-list")
    if args.null and args.from_list is None:
        return _usage("-0 needs --from-list")
    problem = cwd_problem()
    if problem is not None:
        return _usage(f"{problem}; {CWD_ADVICE}")
    try:
        options_for_pool = pool_options(args, os.environ)
        admission = max_pixels(args, os.environ)
        exports = parse_formats(args.export) if args.export else ()
        backend = backend_options(args)
    except ValueError as error:
        return _usage(str(error))
    except OcrPoolError as error:
        return _failed(error, args.out)
    if args.export_dir is not None and not exports:
        return _usage("--export-dir needs --export")
    if args.max_failures is not None and args.max_failures < 1:
        return _usage("--max-failures must be at least 1")
    if exports:
        options_for_pool["engine_options"]["exports"] = [fmt.value for fmt in exports]
    options_for_pool["max_pixels"] = admission  # checked again where the file is read
    options = BatchOptions(
        out=args.out,
        inputs=tuple(args.inputs),
        from_list=args.from_list,
        list_separator="\0" if args.null else "\n",
        format=OutputFormat(args.format),
        detail=args.detail,
        strict=args.strict,
        retry_failed=args.retry_failed,
        max_pixels=admission,
        allow_out_inside_input=args.allow_out_inside_input,
        exports=exports,
        export_dir=args.export_dir,
        max_failures=args.max_failures,
        settings={"pool": options_for_pool, "backend": backend},
    )
    progress = make_progress(
        sys.stderr, time.monotonic, quiet=args.quiet, interval_s=args.progress_interval
    )
    with StopSignals() as stop, break_told_once():
        try:
            summary = run_batch(
                options,
                pool_factory(backend, options_for_pool),
                progress=progress,
                guard=stop.shielded,
            )
        except OcrPoolError as error:
            return _failed(error, args.out)
        except KeyboardInterrupt:  # before the run began: nothing was sent
            _tell("ocrpool run: interrupted")
            return ExitCode.INTERRUPTED
        stop.finish()  # every record is written: a stop now changes nothing
        if not args.quiet:
            _tell("\n".join(summary.lines()))
    return _EXIT_CODES[summary.outcome]


def _tell(text: str) -> None:
    """Print to standard error, unless it cannot be written any more (``2>&1 | head -1``,
    a full disk, a terminal hung up): the records are written, so that must not change
    the exit code."""
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr)


def _failed(error: OcrPoolError, out: str) -> int:
    """Report the error that ended the command; its exit code comes from the error table."""
    code = exit_code_of(error)
    advice = ""
    if code in _ADVICE:
        left, resume = _ADVICE[code]
        advice = f"; {left}, and {_NO_RESUME if out == STDOUT else resume}"
    _tell(f"ocrpool run: error: {error.message.rstrip('.')}{advice}")
    return code


def _usage(message: str) -> int:
    _tell(f"ocrpool run: error: {message}")
    return ExitCode.USAGE
