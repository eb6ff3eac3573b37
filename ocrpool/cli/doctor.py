"""``ocrpool doctor [--engine aspose|tesseract] [--fix] [--license FILE] [--json]``: prints
the engine doctor's report."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from ocrpool.cli.conventions import add_command, positive_seconds
from ocrpool.engines.aspose.doctor import DEFAULT_TIMEOUT_S, diagnose
from ocrpool.engines.checks import CheckStatus, DoctorReport
from ocrpool.engines.tesseract import doctor as tesseract_doctor
from ocrpool.error_codes import ExitCode


def register(commands: Any) -> None:
    parser = add_command(
        commands,
        "doctor",
        examples=[
            ("ocrpool doctor", "check the aspose engine and its runtime"),
            ("ocrpool doctor --engine tesseract --fix", "check tesseract, installing its data"),
            ("ocrpool doctor --license my.lic --json", "check a license, as JSON"),
        ],
        codes=[ExitCode.OK, ExitCode.ENGINE_UNAVAILABLE],
        help="check that an engine can run here (exit 0 only if it reads text, else 4)",
        description="Check, in a throwaway process, everything the engine needs.",
    )
    parser.add_argument(
        "--engine", choices=("aspose", "tesseract"), default="aspose", help="default: aspose"
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="first provide what is missing: OpenSSL 1.1 into the per-user cache (aspose), "
        "language data with pip (tesseract)",
    )
    parser.add_argument(
        "--language", default="eng", help="tesseract: language(s) to check (default eng)"
    )
    parser.add_argument(
        "--tessdata-dir", metavar="DIR", help="tesseract: language data directory to check"
    )
    parser.add_argument(
        "--license", metavar="FILE", help="Aspose license file (default: $OCRPOOL_LICENSE)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up on the engine process after this long (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.engine == "tesseract":
        report = tesseract_doctor.diagnose(
            fix=args.fix,
            language=args.language,
            tessdata_dir=args.tessdata_dir,
            timeout=args.timeout,
        )
    else:
        report = diagnose(fix=args.fix, license=args.license, timeout=args.timeout)
    print(render_json(report) if args.json else render_text(report, args.engine))
    return ExitCode.OK if report.ok else ExitCode.ENGINE_UNAVAILABLE


def render_text(report: DoctorReport, engine: str = "aspose") -> str:
    width = max(len(check.name) for check in report.checks)
    lines = []
    for check in report.checks:
        line = f"{check.status.value:<4}  {check.name:<{width}}  {check.detail}"
        if check.remedy and check.status in (CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.INFO):
            line += f"  -> {check.remedy}"
        lines.append(line)
        lines += [f"      | {tail}" for tail in check.stderr_tail.strip().splitlines()]
    verdict = f"the {engine} engine works" if report.ok else f"the {engine} engine cannot run here"
    lines.append(f"ocrpool doctor: {verdict}")
    return "\n".join(lines)


def render_json(report: DoctorReport) -> str:
    checks = [dataclasses.asdict(check) for check in report.checks]
    return json.dumps({"ok": report.ok, "checks": checks}, indent=2)
