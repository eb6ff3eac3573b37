"""``python -m benchmarks``: one subcommand per benchmark; without one, the consolidated
comparison. The parser only parses and prints; the work is in the modules."""

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

from benchmarks import engines, pages, requirements, service
from benchmarks.comparisons import readme, report
from benchmarks.comparisons.scenarios import Kind
from benchmarks.comparisons.suite import (
    DEFAULT_ROUNDS,
    FULL,
    QUICK,
    QUICK_ROUNDS,
    Setup,
    Workload,
    run_suite,
)
from benchmarks.harness import corpus
from benchmarks.harness.method import select
from benchmarks.harness.tables import RunClock
from benchmarks.studies import engine_tuning, options, startup
from benchmarks.studies.engine_report import write_study

RESULTS = Path(__file__).resolve().parent / "results"
Handler = Callable[[argparse.ArgumentParser, argparse.Namespace, str], int]


@dataclass(frozen=True)
class Defaults:
    """What ``compare``'s options left out default to, by engine and ``--quick``."""

    jobs: int
    time_budget_s: float | None
    timeout_s: float
    stall_s: float
    rounds: int
    scenarios: tuple[str, ...] | None
    """``None``: every scenario that is not opt-in."""
    rss_limit_mb: float


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
    scenarios=(
        "inprocess-reuse",
        "inprocess-tuned",
        "inprocess-leak",
        "ocrpool-jobs",
        "ocrpool-steady",
        "ocrpool-rss",
        "pebble",
        "cf-ppe",
    ),
    rss_limit_mb=ASPOSE_RSS_LIMIT,
)
"""Real OCR is slow: the peers' runs without recycling only matter for pool overhead."""
_FAKE = Defaults(
    jobs=2000,
    time_budget_s=None,
    timeout_s=120.0,
    stall_s=20.0,
    rounds=3,
    scenarios=None,
    rss_limit_mb=200.0,
)
_TESSERACT = replace(_ASPOSE, jobs=600, time_budget_s=30.0, rss_limit_mb=100.0)
"""Tesseract reads a shipped page in a fifth of Aspose's time, in a worker of about 100 MB."""
DEFAULTS = {
    # (engine, quick)
    ("aspose", False): _ASPOSE,
    ("aspose", True): replace(_ASPOSE, jobs=8, time_budget_s=8.0, timeout_s=120.0, stall_s=60.0),
    ("tesseract", False): _TESSERACT,
    ("tesseract", True): replace(_TESSERACT, jobs=8, time_budget_s=8.0, timeout_s=120.0),
    ("fake", False): _FAKE,
    ("fake", True): replace(_FAKE, jobs=300, rounds=1, timeout_s=30.0, stall_s=5.0),
}
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


def _option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``; the value is read as JSON when it can be (``1``, ``0.5``, ``null``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _shared(out: Path | None, out_help: str) -> argparse.ArgumentParser:
    """The options every subcommand takes (``out=None``: ``--out`` is the results folder
    the subcommand writes into, under a name of its own)."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--out", type=Path, default=out or RESULTS, help=out_help)
    shared.add_argument(
        "--corpus", type=Path, default=corpus.DEFAULT_CORPUS, help="folder of input images"
    )
    shared.add_argument("--quick", action="store_true", help="few jobs, short limits")
    shared.add_argument("--workers", type=_positive, default=2, help="worker processes (default 2)")
    shared.add_argument("--rounds", type=_positive, help="rounds, in alternating order")
    shared.add_argument("--time-budget", type=float, help="seconds after which no new job starts")
    return shared


def _pool_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--in-flight", type=int, default=2, help="jobs kept submitted per worker (default 2)"
    )
    parser.add_argument(
        "--max-total-rss-mb",
        type=float,
        default=psutil.virtual_memory().total / 2**20 / 2,
        help="stop a scenario whose tree's RSS passes this (default: half the memory)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        parents=[_shared(RESULTS, "output folder (default benchmarks/results)")],
        description="Without a subcommand: the consolidated comparison. Every comparison "
        "scenario of every workload (fake-noop: pool overhead; fake-leak: leaking jobs; "
        "aspose: real OCR), 3 rounds in alternating order, into OUT/results.csv, "
        "samples.csv, run.json, results.md (with issue 19's goals, met or not) and "
        "plots/; about 45 min on 2 cores. --quick: the fake workloads, 2 short rounds. "
        "Then `python -m benchmarks readme` puts the results into docs/benchmarks.md.",
    )
    parser.add_argument(
        "--workloads",
        type=_names,
        help=f"comma-separated workloads (default: {', '.join(w.name for w in FULL)}; "
        "--quick: the fake ones)",
    )
    _pool_options(parser)
    parser.set_defaults(handler=_consolidated)
    commands = parser.add_subparsers(title="subcommands", metavar="COMMAND")

    def command(name: str, handler: Handler, help: str, out: Path | None = None) -> Any:
        where = f"output folder (default {out or RESULTS})"
        sub = commands.add_parser(name, help=help, description=help, parents=[_shared(out, where)])
        sub.set_defaults(handler=handler)
        return sub

    compare = command(
        "compare",
        _compare,
        "one engine's comparison, with every knob: results.csv, samples.csv, run.json, "
        "results.md and plots/ in OUT",
        RESULTS / "compare",
    )
    compare.add_argument("--engine", choices=("aspose", "tesseract", "fake"), default="aspose")
    compare.add_argument(
        "--engine-option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine option for every scenario (fake: e.g. leak_mb=2 or delay=0.01)",
    )
    compare.add_argument("--name", help="the workload's name in the results (default: engine)")
    compare.add_argument(
        "--jobs", type=_positive, help="jobs per scenario (default: 200 aspose, 2000 fake)"
    )
    compare.add_argument("--scenarios", type=_names, help="comma-separated scenario names")
    compare.add_argument("--timeout", type=float, help="seconds a scenario may run in all")
    compare.add_argument("--stall", type=float, help="seconds without a finished job: hung")
    compare.add_argument(
        "--max-jobs", type=int, default=50, help="recycle every N jobs per worker (default 50)"
    )
    compare.add_argument(
        "--rss-limit-mb",
        type=float,
        help="ocrpool-rss: recycle a worker once its RSS grew by this much "
        f"(default {ASPOSE_RSS_LIMIT:g} aspose, 200 fake)",
    )
    _pool_options(compare)
    command("report", _report, "redraw results.md and plots/ from the CSV files in OUT")
    readme_command = command(
        "readme", _readme, "rewrite the benchmark block of docs/benchmarks.md from the files in OUT"
    )
    readme_command.add_argument("--readme", type=Path, default=readme.DEFAULT_README)
    readme_command.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if the page is out of date"
    )
    study = command(
        "tune-engine",
        _tune_engine,
        "what each setting of the engine's runtime costs (into OUT/tune-engine)",
    )
    study.add_argument(
        "--jobs",
        type=int,
        help=f"timed jobs per worker (default {ENGINE_STUDY.jobs}, --quick 1)",
    )
    study.add_argument(
        "--settings",
        type=_names,
        help="comma-separated setting names (default: all; 'untuned' always runs)",
    )
    study.add_argument(
        "--settle", type=int, default=2, help="recognitions before the timed ones (default 2)"
    )
    study.add_argument(
        "--lifetime-jobs",
        type=int,
        help="timed jobs of the untuned and adopted engines over a worker's life "
        f"(default {ENGINE_STUDY.lifetime_jobs}, --quick 0; 0 skips that phase)",
    )
    service_command = command(
        "service",
        _service,
        "`ocrpool serve` against OcrPool called directly (into OUT/service; --engine fake "
        "skips the Aspose trial)",
    )
    service_command.add_argument(
        "--engine", choices=("aspose", "tesseract", "fake"), default="aspose"
    )
    command("options", _options, "the cost per page of each recognition option (OUT/options)")
    starts = command(
        "startup", _startup, "the cost of a worker start by start method (OUT/startup.md)"
    )
    starts.add_argument("--jobs", type=int, default=200, help="jobs per method (default 200)")
    command(
        "engines",
        _engines,
        "Tesseract and Aspose on the same pages: CPU per page, RSS, word recall (OUT/engines)",
    )
    split = command(
        "pages", _pages, "split documents against whole ones (into OUT/pages/results.md)"
    )
    split.add_argument("--engine", choices=("aspose", "tesseract", "fake"), default="aspose")
    split.add_argument(
        "--engine-option", type=_option, action="append", default=[], metavar="KEY=VALUE"
    )
    split.add_argument(
        "--pages", type=int, default=40, help="the long document's pages (default 40)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    handler: Handler = args.handler
    return handler(parser, args, command)


def _consolidated(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    chosen = QUICK if args.quick else FULL
    try:
        names = args.workloads or [w.name for w in chosen if not args.quick or w.engine == "fake"]
        workloads = tuple(
            replace(w, time_budget_s=args.time_budget or w.time_budget_s)
            for w in select(chosen, names, "workload")
        )
        setup = _setup(args)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    absent = requirements.missing(
        ["ray"] if any(s.kind is Kind.RAY for w in workloads for s in w.chosen()) else []
    )
    if absent:
        print(requirements.message(absent), file=sys.stderr)
        return 2
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
    title = "ocrpool benchmark: every workload, every comparison scenario"
    return _run(workloads, setup, rounds, args.out, title, command)


def _compare(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    defaults = DEFAULTS[(args.engine, args.quick)]
    workload = Workload(
        name=args.name or args.engine,
        engine=args.engine,
        engine_options=dict(args.engine_option),
        scenarios=args.scenarios or defaults.scenarios,
        jobs=args.jobs or defaults.jobs,
        time_budget_s=args.time_budget or defaults.time_budget_s,
        max_jobs=args.max_jobs,
        rss_limit_mb=args.rss_limit_mb or defaults.rss_limit_mb,
        timeout_s=args.timeout or defaults.timeout_s,
        stall_s=args.stall or defaults.stall_s,
    )
    try:
        workload.chosen()
        setup = _setup(args)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    title = f"ocrpool benchmark, {workload.name}"
    return _run((workload,), setup, args.rounds or defaults.rounds, args.out, title, command)


def _setup(args: argparse.Namespace) -> Setup:
    return Setup(
        sources=tuple(str(path) for path in corpus.images_in(args.corpus)),
        workers=args.workers,
        in_flight=args.in_flight,
        max_total_rss_mb=args.max_total_rss_mb,
    )


def _run(
    workloads: Sequence[Workload], setup: Setup, rounds: int, out: Path, title: str, command: str
) -> int:
    rows = run_suite(workloads, setup, rounds, out, title, command, print)
    paths = report.publish(out)
    print("\n".join(report.results_table(rows)))
    print("wrote " + ", ".join(str(p) for p in (out / "results.csv", out / "samples.csv", *paths)))
    return 0


def _report(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    try:
        paths = report.publish(args.out)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        parser.error(f"cannot read the comparison in {args.out}: {exc}")
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0


def _readme(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    try:
        text = readme.generated(args.readme, report.load(args.out), args.out)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        parser.error(f"cannot read the comparison in {args.out} or {args.readme}: {exc}")
    if text == args.readme.read_text():
        print(f"{args.readme} is up to date with {args.out}")
        return 0
    if args.check:
        print(f"{args.readme} is out of date: run python -m benchmarks readme", file=sys.stderr)
        return 1
    args.readme.write_text(text)
    print(f"rewrote the benchmark block of {args.readme} from {args.out}")
    return 0


def _startup(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    costs = startup.run(args.jobs, args.rounds or 3)
    table = startup.report(costs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.md").write_text(table + "\n")
    print(table)
    return 0


def _pages(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    runs, cost = pages.run(
        args.pages, args.rounds or 3, args.engine, dict(args.engine_option), args.workers
    )
    table = pages.report(runs, cost, args.workers, command)
    (args.out / "pages").mkdir(parents=True, exist_ok=True)
    (args.out / "pages" / "results.md").write_text(table + "\n")
    print(table)
    return 0


def _engines(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    images = corpus.images_in(args.corpus)
    rounds = args.rounds or engines.DEFAULT_ROUNDS
    print(engines.run(images, rounds, args.out / "engines", command, print))
    return 0


def _options(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
    options.run(
        corpus.images_in(args.corpus),
        args.rounds or options.DEFAULT_ROUNDS,
        args.time_budget or options.DEFAULT_BUDGET_S,
        args.out / "options",
        command,
    )
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


def _service(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> int:
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
