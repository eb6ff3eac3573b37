"""``ocrpool serve``: one OCR service over HTTP, in front of one pool, for many programs.

Parses and prints only; the service is ``ocrpool.service`` (the ``serve`` extra).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from ocrpool.cli.conventions import add_command, break_told_once, finite_number
from ocrpool.cli.pool_options import (
    SettingFlag,
    add_max_pixels_argument,
    add_pool_arguments,
    add_setting_arguments,
    max_pixels,
    pool_options,
)
from ocrpool.error_codes import ExitCode, exit_code_of
from ocrpool.errors import OcrPoolError
from ocrpool.pool.config import env_name, from_environment
from ocrpool.service.settings import ServiceSettings

_SERVICE_FLAGS: tuple[SettingFlag, ...] = (  # ServiceSettings fields
    ("--host", "host", str, "HOST", "address to listen on"),
    ("--port", "port", int, "PORT", "port (0: one the system chooses, named in the first line)"),
    (
        "--token",
        "token",
        str,
        "TOKEN",
        "require 'Authorization: Bearer TOKEN' (better in the environment: a token on the "
        "command line is visible to every user of the machine in ps)",
    ),
    (
        "--allow-path-prefix",
        "allow_path_prefix",
        str,
        "DIR",
        "let requests name server-side files inside DIR with ?path= (default: bytes only)",
    ),
    ("--max-body-mb", "max_body_mb", finite_number, "MB", "refuse larger request bodies with 413"),
    (
        "--body-timeout",
        "body_timeout_s",
        finite_number,
        "SECONDS",
        "answer 408 to a request whose headers, or then whose body, have not all arrived "
        "in this time (an upload holds a queue slot meanwhile)",
    ),
    ("--max-queue", "max_queue", int, "N", "jobs accepted and unfinished; more get 429"),
    (
        "--max-pages",
        "max_pages",
        int,
        "N",
        "refuse with 413, before queueing any job, a request whose inputs hold more pages in "
        "all: each page is a job of its own while --max-queue counts inputs (1000 fits a "
        "long book yet keeps one request from queueing the 100,000 pages a small TIFF "
        "can claim)",
    ),
    (
        "--result-ttl",
        "result_ttl_s",
        finite_number,
        "SECONDS",
        "keep a finished job's result this long",
    ),
    (
        "--max-results",
        "max_results",
        int,
        "N",
        "keep at most N finished results, oldest dropped first",
    ),
    (
        "--max-results-mb",
        "max_results_mb",
        finite_number,
        "MB",
        "keep at most MB of finished results",
    ),
    (
        "--drain-timeout",
        "drain_timeout_s",
        finite_number,
        "SECONDS",
        "on SIGTERM, time for accepted jobs before they fail",
    ),
    (
        "--unhealthy-after",
        "unhealthy_after_s",
        finite_number,
        "SECONDS",
        "answer /healthz with 503 once the pool has been broken (its engines cannot start; "
        "rebuilt meanwhile) this long, so a process manager restarts the service",
    ),
)
_NAMES = tuple(name for _, name, *_ in _SERVICE_FLAGS)
_FROM_ENV = frozenset(f.name for f in dataclasses.fields(ServiceSettings)) - {"max_pixels"}
"""Read here from ``OCRPOOL_*`` variables; ``max_pixels`` as ``ocrpool run`` reads it."""


def register(commands: Any) -> None:
    parser = add_command(
        commands,
        "serve",
        examples=[
            ("ocrpool serve --workers 2", "serve on 127.0.0.1:8000 with two engines"),
            (
                "OCRPOOL_TOKEN=secret ocrpool serve --host 0.0.0.0 --max-queue 128",
                "on every address, for clients that send the token",
            ),
            (
                "curl --data-binary @scan.png localhost:8000/v1/ocr",
                "OCR one image through it",
            ),
        ],
        codes=[ExitCode.OK, ExitCode.USAGE],
        help="an OCR service over HTTP (needs the 'serve' extra)",
        description="Serve OCR over HTTP from one pool: POST /v1/ocr, async jobs under "
        "/v1/jobs, /healthz, /readyz and /metrics; the schema at /openapi.json and its "
        "docs page at /docs. Stops gracefully on SIGTERM.",
    )
    service = parser.add_argument_group("service")
    add_setting_arguments(service, _SERVICE_FLAGS, ServiceSettings)
    add_max_pixels_argument(parser)
    service.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help=f"log every request to standard error (${env_name('access_log')})",
    )
    service.add_argument(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        metavar="ORIGIN",
        help="let web pages from ORIGIN (https://app.example) call the service; repeatable; "
        f"default none (${env_name('cors_origins')}, comma-separated)",
    )
    add_pool_arguments(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        from ocrpool.service import serve
    except ImportError as error:
        return _usage(f"{error.name} is missing: install ocrpool[serve]")
    given = {name: getattr(args, name) for name in (*_NAMES, "access_log")}
    from_flags = {name: value for name, value in given.items() if value not in (None, "")}
    if args.cors_origins:
        from_flags["cors_origins"] = tuple(args.cors_origins)
    try:
        settings = ServiceSettings(
            pool=pool_options(args, os.environ),
            max_pixels=max_pixels(args, os.environ),
            **{**from_environment(ServiceSettings, os.environ, only=_FROM_ENV), **from_flags},
        )
    except ValueError as error:
        return _usage(str(error))
    if settings.allow_path_prefix is not None and not os.path.isdir(settings.allow_path_prefix):
        return _usage(f"--allow-path-prefix {settings.allow_path_prefix}: not a directory")
    try:
        with break_told_once():
            serve(settings, on_listening=_announce)
    except OcrPoolError as error:  # the address, or the engine's options
        print(f"ocrpool serve: error: {error.message}", file=sys.stderr)
        return exit_code_of(error)
    return ExitCode.OK


def _announce(url: str) -> None:
    print(f"ocrpool serve: {url} (GET /readyz says when workers are warm)", file=sys.stderr)


def _usage(message: str) -> int:
    print(f"ocrpool serve: error: {message}", file=sys.stderr)
    return ExitCode.USAGE
