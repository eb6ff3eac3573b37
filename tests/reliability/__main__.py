"""``python -m tests.reliability``: the long runs whose figures the README publishes.

    python -m tests.reliability soak --jobs 120000 --kills-per-min 0,30,120
    python -m tests.reliability run-chaos --inputs 2000 --kills 40
    python -m tests.reliability aspose --images 500 --fuzz 300
    python -m tests.reliability tesseract --images 2000 --fuzz 300
    python -m tests.reliability plots    # redraw the plots from the JSON results

Each writes its JSON (and plots) under ``--out`` (default
``benchmarks/results/reliability``) and exits 1 if any invariant was broken. Options
common to every mode (``--seed``, ``--out``) come before the mode's name.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from .figures import redraw, write_json, write_markdown

DEFAULT_OUT = Path("benchmarks/results/reliability")


def _soak(args: argparse.Namespace) -> int:
    from .soak import soak

    rates = [float(x) for x in args.kills_per_min.split(",")]
    with tempfile.TemporaryDirectory(prefix="ocrpool-soak-") as folder:
        phases = soak(args.jobs, rates, args.poison_rate, args.seed, Path(folder))
    write_json(args.out / "soak.json", {"command": _command(), "phases": phases})
    return 1 if any(phase["problems"] for phase in phases) else 0


def _run_chaos(args: argparse.Namespace) -> int:
    from .runs import kill_and_resume

    with tempfile.TemporaryDirectory(prefix="ocrpool-run-chaos-") as folder:
        report = kill_and_resume(
            Path(folder), args.inputs, args.kills, random.Random(args.seed), *args.run_options
        )
    summary = report.summary()
    print(f"run chaos: {summary}", flush=True)
    write_json(args.out / "run-chaos.json", {"command": _command(), **summary})
    return 1 if report.problems else 0


def _real_engine(args: argparse.Namespace) -> int:
    from .aspose_runs import aspose_soak, fuzz

    engine = args.mode
    args.out.mkdir(parents=True, exist_ok=True)
    soaked = aspose_soak(args.images, engine=engine)
    summary = soaked.summary()
    print(f"{engine} soak: {summary}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ocrpool-fuzz-") as folder:
        fuzzed = fuzz(Path(folder), args.fuzz, args.seed, engine=engine)
    print(f"{engine} fuzz: {fuzzed.summary()}", flush=True)
    write_json(
        args.out / f"{engine}.json",
        {
            "command": _command(),
            "soak": summary,
            "fuzz": fuzzed.summary(),
            "rss_timeline": soaked.timeline,
        },
    )
    return 1 if soaked.problems or fuzzed.problems else 0


def _command() -> str:
    return " ".join(["python -m tests.reliability", *sys.argv[1:]])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    modes = parser.add_subparsers(dest="mode", required=True)
    soak = modes.add_parser("soak", help="fake-engine jobs under worker kills, by phase")
    soak.add_argument("--jobs", type=int, default=120_000, help="jobs in all phases together")
    soak.add_argument(
        "--kills-per-min",
        default="0,30,120",
        help="one phase per rate of injected worker faults (SIGKILL, OOM-style, SIGSTOP)",
    )
    soak.add_argument(
        "--poison-rate",
        type=float,
        default=0.0005,
        help="fraction of inputs that crash, abort, hang or balloon (phases with faults)",
    )
    soak.set_defaults(handler=_soak)
    chaos = modes.add_parser("run-chaos", help="ocrpool run killed and resumed over one output")
    chaos.add_argument("--inputs", type=int, default=2000, help="images in the folder")
    chaos.add_argument("--kills", type=int, default=40, help="SIGKILLs and SIGTERMs, at random")
    chaos.add_argument(
        "--run-options",
        nargs=argparse.REMAINDER,
        default=["--engine-option", "delay=0.01"],
        help="more ocrpool run flags (default: --engine-option delay=0.01)",
    )
    chaos.set_defaults(handler=_run_chaos)
    for engine, images in (("aspose", 500), ("tesseract", 2000)):
        real = modes.add_parser(engine, help=f"the real {engine} engine: a soak and a fuzz")
        real.add_argument(
            "--images", type=int, default=images, help="scans OCRed (shipped ones, cycled)"
        )
        real.add_argument("--fuzz", type=int, default=300, help="damaged scans")
        real.set_defaults(handler=_real_engine)
    plots = modes.add_parser("plots", help="redraw the plots and results.md from the JSON results")
    plots.set_defaults(handler=lambda args: 0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    redraw(args.out)
    write_markdown(args.out)
    return code


if __name__ == "__main__":
    sys.exit(main())
