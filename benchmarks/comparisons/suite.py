"""The consolidated comparison: every workload's scenarios in alternating rounds, into one
``results.csv``.

A workload is an engine with its options under one name (``fake-noop``: the pool's own
overhead; ``fake-leak``: jobs that leak; ``aspose``: real OCR). ``run_suite`` runs every
scenario of every workload once per round, the rounds in alternating order, and writes
what it measured; ``report.publish`` draws the Markdown and the plots from those files
alone, so they can be redrawn without running anything:

- ``results.csv``: one row per run (workload, scenario, round), the ``Measures`` columns;
- ``samples.csv``: every 100 ms reading of each run's total RSS and jobs finished;
- ``run.json``: the run's header (command, date, machine, load) and its workloads.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.comparisons.metrics import Measures, agrees, consensus, measure, window_start
from benchmarks.comparisons.runner import Item, Limits, Run, run_all
from benchmarks.comparisons.scenarios import Plan, Scenario, standard_scenarios
from benchmarks.harness.method import select
from benchmarks.harness.tables import Header, RunClock, write_csv

RESULTS = "results.csv"
SAMPLES = "samples.csv"
RUN = "run.json"


@dataclass(frozen=True)
class Workload:
    """One engine configuration and the scenarios it runs (``None``: every scenario that
    is not opt-in), with its own job count, time budget, recycling period and limits."""

    name: str
    engine: str
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    scenarios: Sequence[str] | None = None
    jobs: int = 2000
    time_budget_s: float | None = None
    max_jobs: int = 50
    rss_limit_mb: float = 200.0
    timeout_s: float = 120.0
    stall_s: float = 20.0

    def chosen(self) -> tuple[Scenario, ...]:
        """Its scenarios in table order; an unknown name is a ``ValueError``."""
        standard = standard_scenarios(self.max_jobs, self.rss_limit_mb)
        if self.scenarios is None:
            return tuple(s for s in standard if not s.opt_in)
        return select(standard, self.scenarios)

    def describe(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.engine_options.items()) or "defaults"
        budget = f"no new job after {self.time_budget_s:g} s" if self.time_budget_s else "all"
        return (
            f"`{self.name}`: engine `{self.engine}` ({options}); "
            f"{', '.join(s.name for s in self.chosen())}; up to {self.jobs} jobs each ({budget}); "
            f"recycling every {self.max_jobs} jobs (ocrpool-rss: {self.rss_limit_mb:g} MB)"
        )


FAKE_NOOP = Workload("fake-noop", "fake", jobs=40_000, time_budget_s=10.0)
"""10 s a scenario (the in-process ones finish their 40,000 jobs sooner): the 6,000 jobs of
earlier runs took 1.5 s without recycling, and the same scenario then ranged over ±25%
from round to round."""
FAKE_LEAK = Workload(
    "fake-leak",
    "fake",
    {"leak_mb": 1, "delay": 0.02},
    scenarios=(
        "inprocess-tuned",
        "ocrpool-jobs",
        "ocrpool-steady",
        "ocrpool-rss",
        "pebble",
        "cf-ppe-steady",
    ),
    time_budget_s=15.0,
)
"""20 ms jobs leaking 1 MB each: unrecycled processes climb by a GB every 10 s of two
workers; the recycled ones saw-tooth."""
ASPOSE = Workload(
    "aspose",
    "aspose",
    scenarios=(
        "inprocess-tuned",
        "inprocess-dotnet",
        "ocrpool-jobs",
        "ocrpool-spare",
        "ocrpool-steady",
        "pebble",
        "cf-ppe",
        "ray-jobs",
    ),
    jobs=400,
    time_budget_s=60.0,
    max_jobs=25,
    rss_limit_mb=400.0,
    timeout_s=600.0,
    stall_s=120.0,
)
"""Real OCR on the shipped images, about a job per second on two workers: a 60 s window
holds about two recycles at 25 jobs a worker (at 50 it would hold none). A new engine per
job (``inprocess-leak``) costs 7.5 s a job, so its leak needs minutes per round to show:
it runs in ``compare`` only."""
FULL = (FAKE_NOOP, FAKE_LEAK, ASPOSE)
QUICK = (
    dataclasses.replace(
        FAKE_NOOP,
        scenarios=("ocrpool-jobs", "ocrpool-steady", "pebble", "pebble-steady"),
        jobs=300,
        timeout_s=60.0,
        stall_s=10.0,
    ),
    dataclasses.replace(
        FAKE_LEAK,
        engine_options={"leak_mb": 1, "delay": 0.005},
        scenarios=("inprocess-tuned", "ocrpool-jobs"),
        jobs=200,
        timeout_s=60.0,
        stall_s=10.0,
    ),
    dataclasses.replace(
        ASPOSE,
        scenarios=("inprocess-tuned", "ocrpool-jobs", "pebble"),
        jobs=8,
        time_budget_s=8.0,
    ),
)
"""A smoke run: the fake workloads by default (``--quick`` leaves Aspose out unless it is
named), a few hundred jobs each."""
DEFAULT_ROUNDS = 3
QUICK_ROUNDS = 2


@dataclass(frozen=True)
class Setup:
    """What every workload of a run shares."""

    sources: tuple[str, ...]
    """The input images cycled to each workload's job count."""
    workers: int
    in_flight: int
    max_total_rss_mb: float

    def item(self, workload: Workload, scenario: Scenario) -> Item:
        plan = Plan(
            engine=workload.engine,
            engine_options=dict(workload.engine_options),
            sources=tuple(self.sources[i % len(self.sources)] for i in range(workload.jobs)),
            workers=self.workers,
            in_flight=self.in_flight,
            time_budget_s=workload.time_budget_s,
            workload=workload.name,
        )
        return Item(
            scenario, plan, Limits(workload.timeout_s, workload.stall_s, self.max_total_rss_mb)
        )


@dataclass(frozen=True)
class SampleRow:
    """One reading of a run's tree, a row of ``samples.csv``."""

    workload: str
    scenario: str
    round_index: int
    seconds: float
    """Since the scenario process started."""
    jobs_done: int
    rss_mb: float
    in_window: bool


def summary(row: Measures) -> str:
    """One line about a finished run, for the console."""
    note = f" ({row.message})" if row.message else ""
    return (
        f"round {row.round_index + 1} {row.workload} {row.scenario}: {row.status}, "
        f"{row.jobs}/{row.jobs_planned} jobs, {row.images_per_s:.3g} jobs/s, "
        f"peak {row.peak_total_rss_mb:.0f} MB{note}"
    )


def compared(runs: Sequence[Run], items: Sequence[Item]) -> list[Measures]:
    """Each run's measures, its text compared with the consensus of the runs of its
    workload that recognise with the same options."""
    plans = {item.plan.label: item.plan for item in items}
    texts = {
        name: consensus(
            run for run in runs if run.workload == name and plan.recognises_alike(run.scenario)
        )
        for name, plan in plans.items()
    }
    return [
        dataclasses.replace(measure(run), text_identical=agrees(run, texts[run.workload]))
        for run in runs
    ]


def sample_rows(run: Run) -> list[SampleRow]:
    opened = window_start(run)
    return [
        SampleRow(
            run.workload,
            run.scenario.name,
            run.round_index,
            round(sample.tree.at - run.started, 3),
            sample.jobs_done,
            round(sample.tree.rss_mb, 1),
            opened <= sample.tree.at <= run.ended,
        )
        for sample in run.samples
    ]


def run_suite(
    workloads: Sequence[Workload],
    setup: Setup,
    rounds: int,
    out: Path,
    title: str,
    command: str,
    log: Callable[[str], None],
) -> list[Measures]:
    """Run every workload's scenarios ``rounds`` times and write ``results.csv``,
    ``samples.csv`` and ``run.json`` into ``out``; return the rows. The files are written
    again after every run, so a run stopped half-way keeps what it measured."""
    clock = RunClock()
    items = tuple(setup.item(w, s) for w in workloads for s in w.chosen())
    setup_lines = [
        *(w.describe() for w in workloads),
        f"{setup.workers} workers, {setup.in_flight} jobs in flight per worker; "
        f"{rounds} round(s) in alternating order",
        f"a scenario is stopped past its workload's timeout or stall limit, or "
        f"{setup.max_total_rss_mb:.0f} MB of total RSS",
    ]
    done: list[Run] = []
    samples: list[SampleRow] = []

    def keep(run: Run) -> None:
        done.append(run)
        samples.extend(sample_rows(run))
        rows = compared(done, items)
        log(summary(rows[-1]))
        write_files(out, clock.header(title, command, setup_lines), workloads, rows, samples)

    run_all(items, rounds, keep)
    return compared(done, items)


def write_files(
    out: Path,
    header: Header,
    workloads: Sequence[Workload],
    rows: Sequence[Measures],
    samples: Sequence[SampleRow],
) -> None:
    """What a comparison measured, for ``report.publish`` to draw from."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / RESULTS, [dataclasses.asdict(row) for row in rows])
    write_csv(out / SAMPLES, [dataclasses.asdict(sample) for sample in samples])
    run = {"header": header.to_json(), "workloads": [dataclasses.asdict(w) for w in workloads]}
    (out / RUN).write_text(json.dumps(run, indent=1) + "\n")
