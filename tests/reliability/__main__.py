"""``python -m tests.reliability``: the long runs whose figures the README publishes.

    python -m tests.reliability soak --jobs 120000 --kills-per-min 0,30,120
    python -m tests.reliability run-chaos --inputs 2000 --kills 40
    python -m tests.reliability aspose --images 500 --fuzz 300

Each writes its JSON (and plots) under ``--out`` (default
``benchmarks/results/reliability``) and exits 1 if any invariant was broken.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from .figures import plot_supervisor, write_json

DEFAULT_OUT = Path("benchmarks/results/reliability")


def _soak(args: argparse.Namespace) -> int:
    from .soak import soak

    rates = [float(x) for x in args.kills_per_min.split(",")]
    with tempfile.TemporaryDirectory(prefix="ocrpool-soak-") as folder:
        phases = soak(args.jobs, rates, args.poison_rate, args.seed, Path(folder))
    args.out.mkdir(parents=True, exist_ok=True)
    plot_supervisor(args.out / "soak-supervisor.png", phases)
    command = " ".join(["python -m tests.reliability", *sys.argv[1:]])
    write_json(args.out / "soak.json", {"command": command, "phases": phases})
    return 1 if any(phase["problems"] for phase in phases) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
