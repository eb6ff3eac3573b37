"""``ocrpool serve``: one OCR service over HTTP, in front of one pool, for many programs.

Parses and prints only; the service is ``ocrpool.service`` (the ``serve`` extra).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ocrpool.cli.conventions import add_command
from ocrpool.cli.pool_options import add_max_pixels_argument, add_pool_arguments, pool_options
from ocrpool.error_codes import ExitCode

TOKEN_ENV = "OCRPOOL_TOKEN"
"""Where the token is read from when ``--token`` is not given: a token on the command line
is visible to every user of the machine in ``ps``."""


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
        "/v1/jobs, /healthz, /readyz and /metrics. Stops gracefully on SIGTERM.",
    )
    service = parser.add_argument_group("service")
    service.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    service.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    service.add_argument(
        "--token",
        help=f"require 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV})",
    )
    service.add_argument(
        "--allow-path-prefix",
        metavar="DIR",
        help="let requests name server-side files inside DIR with ?path= (default: bytes only)",
    )
    service.add_argument(
        "--max-body-mb",
        type=float,
        default=32.0,
        metavar="MB",
        help="refuse larger request bodies with 413 (default: %(default)s)",
    )
    service.add_argument(
        "--max-queue",
        type=int,
        default=64,
        metavar="N",
        help="jobs accepted and unfinished; more get 429 (default: %(default)s)",
    )
    add_max_pixels_argument(parser)
    service.add_argument(
        "--result-ttl",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="keep a finished job's result this long (default: %(default)s)",
    )
    service.add_argument(
        "--max-results",
        type=int,
        default=1000,
        metavar="N",
        help="keep at most N finished results, oldest dropped first (default: %(default)s)",
    )
    service.add_argument(
        "--max-results-mb",
        type=float,
        default=256.0,
        metavar="MB",
        help="keep at most MB of finished results (default: %(default)s)",
    )
    service.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, time for accepted jobs before they fail (default: %(default)s)",
    )
    service.add_argument(
        "--unhealthy-after",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="answer /healthz with 503 once the pool has been broken (its engines cannot "
        "start; rebuilt meanwhile) this long, so a process manager restarts the service "
        "(default: %(default)s)",
    )
    service.add_argument("--access-log", action="store_true", help="log every request")
    add_pool_arguments(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        from ocrpool.service import ServiceSettings, serve
    except ImportError as error:
        return _usage(f"{error.name} is missing: install ocrpool[serve]")
    try:
        settings = ServiceSettings(
            pool=pool_options(args),
            host=args.host,
            port=args.port,
            token=args.token or os.environ.get(TOKEN_ENV) or None,
            allow_path_prefix=args.allow_path_prefix,
            max_body_mb=args.max_body_mb,
            max_queue=args.max_queue,
            max_pixels=args.max_pixels or None,
            result_ttl_s=args.result_ttl,
            max_results=args.max_results,
            max_results_mb=args.max_results_mb,
            drain_timeout_s=args.drain_timeout,
            unhealthy_after_s=args.unhealthy_after,
            access_log=args.access_log,
        )
    except ValueError as error:
        return _usage(str(error))
    if settings.allow_path_prefix is not None and not os.path.isdir(settings.allow_path_prefix):
        return _usage(f"--allow-path-prefix {settings.allow_path_prefix}: not a directory")
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(
        f"ocrpool serve: http://{host}:{settings.port} (GET /readyz says when workers are warm)",
        file=sys.stderr,
    )
    serve(settings)
    return ExitCode.OK


def _usage(message: str) -> int:
    print(f"ocrpool serve: error: {message}", file=sys.stderr)
    return ExitCode.USAGE
