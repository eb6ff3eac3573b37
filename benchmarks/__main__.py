"""``python -m benchmarks``: parse the command line and print; the work is in the modules."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from benchmarks import corpus, engine_tuning, engines, options, pages, service, startup, tuning
from benchmarks.compare import compare
from benchmarks.engine_report import write_study
from benchmarks.report import RunClock
from benchmarks.runner import Limits
from benchmarks.scenarios import Plan, select, standard_scenarios

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Defaults:
    """What the options left out default to, by engine and ``--quick``."""

    jobs: int
    time_budget_s: float | None
    timeout_s: float
    stall_s: float
    rounds: int
    scenarios: tuple[str, ...] | None
    """``None``: every scenario."""
    rss_limit_mb: float
    tune_time_budget_s: float | None
    """The time budget of each trial of the tuning study."""


ASPOSE_SCENARIOS = (
    "inprocess-reuse",
    "inprocess-tuned",
    "inprocess-leak",
    "ocrpool-jobs",
    "ocrpool-steady",
    "ocrpool-rss",
    "pebble",
    "cf-ppe",
)
"""Real OCR is slow: the peers' runs without recycling only matter for pool overhead."""

ASPOSE_RSS_LIMIT = 400.0
"""An Aspose worker's RSS grows by about 200-300 MB after warm-up as real pages load the
rest of its models, then stays flat: a smaller growth limit would recycle every worker
after its first few jobs."""

_ASPOSE = Defaults(
    jobs=200,
    time_budget_s=120.0,
    timeout_s=600.0,
    stall_s=120.0,
    rounds=1,
    scenarios=ASPOSE_SCENARIOS,
    rss_limit_mb=ASPOSE_RSS_LIMIT,
    tune_time_budget_s=75.0,
)
_FAKE = Defaults(
    jobs=2000,
    time_budget_s=None,
    timeout_s=120.0,
    stall_s=20.0,
    rounds=3,
    scenarios=None,
    rss_limit_mb=200.0,
    tune_time_budget_s=None,
)
_TESSERACT = replace(_ASPOSE, jobs=600, time_budget_s=30.0, rss_limit_mb=100.0)
"""Tesseract reads a shipped page in a fifth of Aspose's time, in a worker of about 100 MB."""
DEFAULTS = {
    # (engine, quick)
    ("aspose", False): _ASPOSE,
    ("aspose", True): replace(
        _ASPOSE, jobs=8, time_budget_s=8.0, tune_time_budget_s=8.0, timeout_s=120.0, stall_s=60.0
    ),
    ("tesseract", False): _TESSERACT,
    ("tesseract", True): replace(_TESSERACT, jobs=8, time_budget_s=8.0, timeout_s=120.0),
    ("fake", False): _FAKE,
    ("fake", True): replace(_FAKE, jobs=300, rounds=1, timeout_s=30.0, stall_s=5.0),
}


def _option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``; the value is read as JSON when it can be (``1``, ``0.5``, ``null``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _numbers(none_word: str | None = None) -> Callable[[str], list[int | None]]:
    """A parser of comma-separated integers, where ``none_word`` (if any) stands for ``None``."""

    def parse(text: str) -> list[int | None]:
        try:
            return [
                None if none_word is not None and name == none_word else int(name)
                for name in _names(text)
            ]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected integers or {none_word!r}, got {text!r}"
            ) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Memory and throughput of ocrpool against in-process use and its peers; "
        "'tune' runs the workers x threads x spares x recycling study instead, 'tune-engine' "
        "what each setting of the engine's runtime costs (into OUT/tune-engine), 'startup' "
        "the worker start cost by start method, 'service' "
        "compares `ocrpool serve` with OcrPool called directly (into OUT/service/; with "
        "--engine fake it skips the Aspose trial), 'options' the cost per page of each "
        "recognition option (into OUT/options), 'engines' Tesseract and Aspose on the same "
        "pages (CPU per page, RSS, word recall; into OUT/engines), 'startup' the cost of a "
        "worker start by start method (into OUT/startup.md), 'pages' split documents against "
        "whole ones (into OUT/pages/results.md).",
    )
    parser.add_argument(
        "mode",
        nargs="?",
        choices=(
            "compare",
            "tune",
            "tune-engine",
            "service",
            "options",
            "startup",
            "engines",
            "pages",
        ),
        default="compare",
    )
    parser.add_argument("--engine", choices=("aspose", "tesseract", "fake"), default="aspose")
    parser.add_argument(
        "--engine-option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine option for every scenario (fake: e.g. leak_mb=2 or delay=0.01)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="jobs per scenario (default: 200 aspose, 2000 fake; --quick: 8, 300); "
        f"tune-engine: timed jobs per worker (default {ENGINE_STUDY.jobs}, --quick 1)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--scenarios", type=_names, help="comma-separated scenario names")
    parser.add_argument(
        "--corpus", type=Path, default=corpus.DEFAULT_CORPUS, help="folder of input images"
    )
    parser.add_argument("--quick", action="store_true", help="few jobs, short limits")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument(
        "--time-budget",
        type=float,
        help="seconds after which a scenario starts no new job "
        "(aspose default 120, tune 75, --quick 8)",
    )
    parser.add_argument("--timeout", type=float, help="seconds a scenario may run in all")
    parser.add_argument("--stall", type=float, help="seconds without a finished job: hung")
    parser.add_argument("--rounds", type=int, help="rounds of all scenarios, order alternating")
    parser.add_argument(
        "--max-jobs", type=int, default=50, help="recycle every N jobs per worker (default 50)"
    )
    parser.add_argument(
        "--rss-limit-mb",
        type=float,
        help="ocrpool-rss: recycle a worker once its RSS grew by this much "
        f"(default {ASPOSE_RSS_LIMIT:g} aspose, 200 fake)",
    )
    parser.add_argument(
        "--in-flight", type=int, default=2, help="jobs kept submitted per worker (default 2)"
    )
    parser.add_argument(
        "--max-total-rss-mb",
        type=float,
        default=psutil.virtual_memory().total / 2**20 / 2,
        help="stop a scenario whose tree's RSS passes this (default: half the memory)",
    )
    study = parser.add_argument_group("tuning study (mode 'tune')")
    study.add_argument("--tune-workers", type=_numbers(), default=[1, 2, 3], help="default 1,2,3")
    study.add_argument(
        "--tune-threads",
        type=_numbers("default"),
        default=[1, 2],
        help="engine threads per worker; 'default' is Aspose's own (default 1,2)",
    )
    study.add_argument("--tune-spares", type=_numbers(), default=[0, 1, 2], help="default 0,1,2")
    study.add_argument(
        "--tune-max-jobs",
        type=_numbers("none"),
        default=[25, 50, 100, None],
        help="recycling periods; 'none' never recycles (default 25,50,100,none)",
    )
    parser.add_argument(
        "--pages", type=int, default=40, help="pages: the long document's pages (default 40)"
    )
    engine_study = parser.add_argument_group("engine tuning study (mode 'tune-engine')")
    engine_study.add_argument(
        "--settings",
        type=_names,
        help="comma-separated setting names (default: all; 'untuned' always runs)",
    )
    engine_study.add_argument(
        "--settle", type=int, default=2, help="recognitions before the timed ones (default 2)"
    )
    engine_study.add_argument(
        "--lifetime-jobs",
        type=int,
        help="timed jobs of the untuned and adopted engines over a worker's life "
        f"(default {ENGINE_STUDY.lifetime_jobs}, --quick 0; 0 skips that phase)",
    )
    return parser


ENGINE_STUDY = engine_tuning.Plan(
    engine_tuning.SETTINGS,
    rounds=3,
    jobs=12,
    settle=2,
    lifetime_jobs=24,
    lifetime_replicas=2,
    batch_size=6,
)
"""The engine tuning study's defaults (``--quick``: one round of one job, no lifetime)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.mode == "startup":
        costs = startup.run(args.jobs or 200, args.rounds or 3)
        table = startup.report(costs)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "startup.md").write_text(table + "\n")
        print(table)
        return 0
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    if args.mode == "service":
        return _service(args, command)
    if args.mode == "pages":
        engine_options = dict(args.engine_option)
        runs, cost = pages.run(
            args.pages, args.rounds or 3, args.engine, engine_options, args.workers
        )
        table = pages.report(runs, cost, args.workers, command)
        (args.out / "pages").mkdir(parents=True, exist_ok=True)
        (args.out / "pages" / "results.md").write_text(table + "\n")
        print(table)
        return 0
    if args.mode == "tune-engine":
        return _tune_engine(parser, args, command)
    if args.mode == "engines":
        print(
            engines.run(
                corpus.images_in(args.corpus),
                args.rounds or engines.DEFAULT_ROUNDS,
                args.out / "engines",
                command,
                print,
            )
        )
        return 0
    if args.mode == "options":
        options.run(
            corpus.images_in(args.corpus),
            args.rounds or options.DEFAULT_ROUNDS,
            args.time_budget or options.DEFAULT_BUDGET_S,
            args.out / "options",
            command,
        )
        return 0
    defaults = DEFAULTS[(args.engine, args.quick)]
    jobs = args.jobs or defaults.jobs
    try:
        sources = corpus.sources(args.corpus, jobs)
        standard = standard_scenarios(args.max_jobs, args.rss_limit_mb or defaults.rss_limit_mb)
        names = args.scenarios or defaults.scenarios
        scenarios = select(standard if names else tuple(s for s in standard if not s.opt_in), names)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    plan = Plan(
        engine=args.engine,
        engine_options=dict(args.engine_option),
        sources=sources,
        workers=args.workers,
        in_flight=args.in_flight,
        time_budget_s=args.time_budget
        or (defaults.tune_time_budget_s if args.mode == "tune" else defaults.time_budget_s),
    )
    limits = Limits(
        timeout_s=args.timeout or defaults.timeout_s,
        stall_s=args.stall or defaults.stall_s,
        max_rss_mb=args.max_total_rss_mb,
    )
    setup = [
        f"engine `{plan.engine}`, options {plan.engine_options or 'default'}",
        f"{jobs} jobs per scenario cycling through {len(set(sources))} inputs in "
        f"{args.corpus.name}/ ({', '.join(sorted({Path(s).name for s in sources}))}); "
        f"{plan.in_flight} jobs in flight per worker",
        "limits per scenario: "
        + (f"no new job after {plan.time_budget_s:g} s; " if plan.time_budget_s else "")
        + f"stopped after {limits.timeout_s:g} s in all or {limits.stall_s:g} s "
        f"without a finished job, {limits.max_rss_mb:.0f} MB total RSS",
    ]
    if args.mode == "tune":
        grid = tuning.Grid(
            workers=args.tune_workers,
            threads=args.tune_threads if args.engine == "aspose" else [1],
            spares=args.tune_spares,
            max_jobs=args.tune_max_jobs,
            base_spares=1,
            base_max_jobs=args.max_jobs,
        )
        tuning.tune(grid, plan, limits, args.out, command, setup, print)
        return 0
    rounds = args.rounds or defaults.rounds
    setup.append(f"{plan.workers} workers; {rounds} round(s)")
    compare(scenarios, plan, limits, rounds, args.out, command, setup, print)
    return 0


def _tune_engine(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    quick = replace(ENGINE_STUDY, rounds=1, jobs=1, lifetime_jobs=0) if args.quick else ENGINE_STUDY
    try:
        settings = engine_tuning.select(args.settings)
    except ValueError as exc:
        parser.error(str(exc))
    plan = replace(
        quick,
        settings=settings,
        rounds=args.rounds or quick.rounds,
        jobs=args.jobs or quick.jobs,
        settle=args.settle,
        lifetime_jobs=quick.lifetime_jobs if args.lifetime_jobs is None else args.lifetime_jobs,
        corpus=args.corpus,
    )
    clock = RunClock()
    trials = engine_tuning.run_study(plan, print)
    header = clock.header(
        "Engine tuning study (Aspose, one thread per engine, evaluation mode)",
        command,
        [
            f"{len(plan.settings)} settings x {plan.rounds} round(s), each setting in a pool "
            f"worker of its own, side by side in batches of up to {plan.batch_size} workers "
            "led by an untuned one, taking turns job by job; batches in alternating "
            "order, turns rotating by one worker",
            f"per worker: warm-up, then {plan.jobs} timed jobs after {plan.settle} settling "
            "ones (in the first round, every shipped and test image instead); lifetime "
            f"phase: {plan.lifetime_replicas} workers of each, {plan.lifetime_jobs} timed jobs",
        ],
    )
    paths = write_study(args.out / "tune-engine", header, plan, trials)
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0


def _service(args: argparse.Namespace, command: str) -> int:
    images = corpus.images_in(args.corpus)
    bodies = [image.read_bytes() for image in images]
    chosen = service.trials(args.quick, args.engine, args.time_budget, args.workers)
    setup = [
        f"{args.workers} workers (+1 warm spare), the pool's other defaults, through the "
        "service and directly",
        f"inputs: {', '.join(image.name for image in images)} from {args.corpus.name}/, sent "
        "as bytes in turn",
        "clients are threads of the benchmark's process, each with one keep-alive HTTP "
        "connection (or calling OcrPool.recognize); clients, server and workers share the "
        "machine's cores",
        "each trial is bounded: "
        + "; ".join(
            f"{t.name} {t.clients} x {t.requests_per_client} requests or {t.time_budget_s:g} s"
            for t in chosen
        ),
    ]
    service.benchmark(chosen, bodies, args.workers, args.out / "service", command, setup, print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
