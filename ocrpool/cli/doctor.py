"""``ocrpool doctor [--fix] [--license FILE] [--json]``: prints the aspose doctor's report."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from ocrpool.cli.conventions import add_command
from ocrpool.engines.aspose.doctor import DEFAULT_TIMEOUT_S, CheckStatus, DoctorReport, diagnose
from ocrpool.error_codes import ExitCode


def register(commands: Any) -> None:
    parser = add_command(
        commands,
        "doctor",
        examples=[
            ("ocrpool doctor", "check the aspose engine and its runtime"),
            ("ocrpool doctor --fix", "first fetch OpenSSL 1.1 if it is missing"),
            ("ocrpool doctor --license my.lic --json", "check a license, as JSON"),
        ],
        codes=[ExitCode.OK, ExitCode.ENGINE_UNAVAILABLE],
        help="check that the aspose engine can run here (exit 0 only if it reads text, else 4)",
        description="Check, in a throwaway process, everything the aspose engine needs.",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="first fetch OpenSSL 1.1 into the per-user cache if it is missing",
    )
    parser.add_argument(
        "--license", metavar="FILE", help="Aspose license file (default: $OCRPOOL_LICENSE)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up on the engine process after this long (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = diagnose(fix=args.fix, license=args.license, timeout=args.timeout)
    print(render_json(report) if args.json else render_text(report))
    return ExitCode.OK if report.ok else ExitCode.ENGINE_UNAVAILABLE


def render_text(report: DoctorReport) -> str:
    width = max(len(check.name) for check in report.checks)
    lines = []
    for check in report.checks:
        line = f"{check.status.value:<4}  {check.name:<{width}}  {check.detail}"
        if check.remedy and check.status in (CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.INFO):
            line += f"  -> {check.remedy}"
        lines.append(line)
        lines += [f"      | {tail}" for tail in check.stderr_tail.strip().splitlines()]
    verdict = "the aspose engine works" if report.ok else "the aspose engine cannot run here"
    lines.append(f"ocrpool doctor: {verdict}")
    return "\n".join(lines)


def render_json(report: DoctorReport) -> str:
    checks = [dataclasses.asdict(check) for check in report.checks]
    return json.dumps({"ok": report.ok, "checks": checks}, indent=2)
