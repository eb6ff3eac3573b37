"""The tuning study: which workers x threads, spares and recycling period suit this machine.

Two sweeps of ocrpool scenarios on the same inputs:

1. workers x threads per worker (the engine's ``threads`` option), with the base spares
   and recycling period;
2. at the fastest of those, each other number of spares, then each other recycling
   period (``max_jobs_per_worker``; ``none`` never recycles, the baseline for its cost).

It writes ``tuning.csv`` and ``tuning.md`` with a recommendation drawn from the numbers.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.metrics import Measures, measure
from benchmarks.report import Header, RunClock, cell, markdown_table, write_csv
from benchmarks.runner import Limits, run_scenario
from benchmarks.scenarios import Kind, Plan, Scenario

NOISE = 0.15
"""Throughputs within 15% count as equal: the spread of one configuration's runs here."""
BUSY_SHARE = 0.9
"""A configuration fills the machine when it keeps 90% of the cores busy."""
RECYCLE_COST = 0.05
"""ocrpool's target: recycling costs under 5% of the throughput."""
ESTIMATED_PERIODS = (25, 50, 100, 200)


@dataclass(frozen=True)
class Config:
    workers: int
    threads: int | None
    """The engine's ``threads`` option; ``None`` is Aspose's own default."""
    spares: int
    max_jobs: int | None

    @property
    def name(self) -> str:
        threads = "default" if self.threads is None else self.threads
        return f"w{self.workers}-t{threads}-s{self.spares}-j{self.max_jobs or 'none'}"

    def scenario(self) -> Scenario:
        return Scenario(
            self.name,
            Kind.OCRPOOL,
            f"ocrpool, {self.workers} workers x {self.threads} threads, {self.spares} spares, "
            f"max_jobs_per_worker={self.max_jobs}",
            aspose_options={"threads": self.threads},
            pool_options={"spares": self.spares, "max_jobs_per_worker": self.max_jobs},
            workers=self.workers,
        )


@dataclass(frozen=True)
class Trial:
    sweep: str
    config: Config
    measures: Measures

    def row(self) -> dict[str, object]:
        return {
            "sweep": self.sweep,
            "threads": "default" if self.config.threads is None else self.config.threads,
            "spares": self.config.spares,
            "max_jobs": self.config.max_jobs or "none",
            **dataclasses.asdict(self.measures),
        }


@dataclass(frozen=True)
class Grid:
    workers: Sequence[int]
    threads: Sequence[int | None]
    spares: Sequence[int]
    max_jobs: Sequence[int | None]
    base_spares: int
    base_max_jobs: int | None


def _threads(config: Config) -> int:
    """Threads per worker; Aspose's default uses every core."""
    return config.threads or os.cpu_count() or 1


def _rate(trial: Trial) -> float:
    rate = trial.measures.images_per_s
    return 0.0 if math.isnan(rate) or trial.measures.status != "ok" else rate


def _busy_cores(trial: Trial) -> float:
    """Cores the trial kept busy: images/s x CPU-s per image, both from one window, so the
    drift of the machine's speed between trials cancels out."""
    busy = trial.measures.images_per_s * trial.measures.cpu_s_per_image
    return 0.0 if math.isnan(busy) or trial.measures.status != "ok" else busy


def choose_shape(shape: Sequence[Trial], cores: int) -> Config:
    """Threads: the setting with the lowest median CPU-s per image. Workers: the fewest that
    keep ``BUSY_SHARE`` of the cores busy with it (else the busiest)."""
    by_threads: dict[int | None, list[float]] = {}
    for trial in shape:
        by_threads.setdefault(trial.config.threads, []).append(trial.measures.cpu_s_per_image)
    threads = min(by_threads, key=lambda t: statistics.median(by_threads[t]))
    candidates = sorted(
        (t for t in shape if t.config.threads == threads), key=lambda t: t.config.workers
    )
    filling = [t for t in candidates if _busy_cores(t) >= BUSY_SHARE * cores]
    return (filling[0] if filling else max(candidates, key=_busy_cores)).config


def estimated_cost(trial: Trial, period: int) -> float:
    """Share of the CPU that recycling every ``period`` jobs should cost: one worker start
    (its share of the trial's start-up CPU) per ``period`` images' CPU."""
    m = trial.measures
    per_start = m.startup_cpu_s / (trial.config.workers + trial.config.spares)
    return per_start / (period * m.cpu_s_per_image)


def run_study(
    grid: Grid, plan: Plan, limits: Limits, log: Callable[[str], None]
) -> tuple[list[Trial], Config]:
    """Both sweeps; returns every trial and the recommended configuration."""
    trials: list[Trial] = []

    def trial(sweep: str, config: Config) -> Trial:
        done = next((t for t in trials if t.config == config), None)
        if done is None:
            done = Trial(sweep, config, measure(run_scenario(config.scenario(), plan, limits)))
            trials.append(done)
            m = done.measures
            log(f"{sweep} {config.name}: {m.status}, {m.images_per_s:.3g} images/s")
        return done

    shape = [
        trial("workers x threads", Config(w, t, grid.base_spares, grid.base_max_jobs))
        for w in grid.workers
        for t in grid.threads
    ]
    chosen = choose_shape(shape, os.cpu_count() or 1)
    spares = [trial("spares", dataclasses.replace(chosen, spares=s)) for s in grid.spares]
    best = max(_rate(t) for t in spares)
    as_fast = [t for t in spares if _rate(t) >= (1 - NOISE) * best]
    chosen = min(as_fast, key=lambda t: (t.measures.p99_ms, t.config.spares)).config
    for period in grid.max_jobs:
        trial("max_jobs", dataclasses.replace(chosen, max_jobs=period))
    basis = next(t for t in trials if t.config == chosen)
    affordable = [n for n in grid.max_jobs if n and estimated_cost(basis, n) < RECYCLE_COST]
    return trials, dataclasses.replace(chosen, max_jobs=min(affordable, default=None))


_COLUMNS = (
    ("images_per_s", "images/s", 2),
    ("cpu_s_per_image", "CPU s/image", 3),
    ("p50_ms", "p50 ms", 0),
    ("p99_ms", "p99 ms", 0),
    ("p99_recycle_ms", "p99 recycling ms", 0),
    ("peak_total_rss_mb", "peak RSS MB", 0),
    ("recycles", "recycles", 0),
    ("failed", "failed", 0),
    ("status", "status", 0),
    ("other_load", "other load", 2),
)


def recycle_cost_estimate(trial: Trial, periods: Sequence[int]) -> str:
    m = trial.measures
    per_start = m.startup_cpu_s / (trial.config.workers + trial.config.spares)
    costs = ", ".join(f"every {n}: {estimated_cost(trial, n):.1%}" for n in periods)
    return (
        f"One worker start (interpreter, engine, warm-up) costs about {per_start:.1f} CPU-s, "
        f"the CPU of {per_start / m.cpu_s_per_image:.1f} images at {m.cpu_s_per_image:.2f} "
        f"CPU-s each, so recycling should cost about: {costs}. The trials are too short for "
        f"more than a few recycles each, so this estimate, not their throughput, picks the "
        f"period."
    )


def tuning_markdown(header: Header, trials: Sequence[Trial], chosen: Config) -> str:
    shape = dataclasses.replace(chosen, max_jobs=None)
    rows = [
        [
            trial.sweep,
            str(trial.config.workers),
            "default" if trial.config.threads is None else str(trial.config.threads),
            str(trial.config.spares),
            str(trial.config.max_jobs or "none"),
            *(cell(getattr(trial.measures, name), digits) for name, _, digits in _COLUMNS),
        ]
        for trial in trials
    ]
    headers = ["sweep", "workers", "threads", "spares", "max_jobs"]
    headers += [header for _, header, _ in _COLUMNS]
    lines = [*header.markdown(), "", "## Trials", "", *markdown_table(headers, rows), ""]
    lines += [
        "## Recommendation",
        "",
        f"workers={chosen.workers}, threads={chosen.threads}, spares={chosen.spares}, "
        f"max_jobs_per_worker={chosen.max_jobs}: the threads setting with the lowest median "
        f"CPU-s per image; the fewest workers keeping {BUSY_SHARE:.0%} of the cores busy "
        f"with it (images/s x CPU-s per image, which the drift of this machine's speed "
        f"between trials does not move); the spares with the lowest p99 among those within "
        f"{NOISE:.0%} of the fastest; the shortest recycling period estimated to cost under "
        f"{RECYCLE_COST:.0%} of the CPU.",
        "",
        recycle_cost_estimate(
            next(t for t in trials if dataclasses.replace(t.config, max_jobs=None) == shape),
            ESTIMATED_PERIODS,
        ),
        "",
    ]
    return "\n".join(lines)


def tune(
    grid: Grid,
    plan: Plan,
    limits: Limits,
    out: Path,
    command: str,
    setup: Sequence[str],
    log: Callable[[str], None],
) -> Config:
    """Run the study and write ``tuning.csv`` and ``tuning.md`` into ``out``."""
    clock = RunClock()
    trials, chosen = run_study(grid, plan, limits, log)
    header = clock.header(f"ocrpool tuning study, {plan.engine} engine", command, setup)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "tuning.csv", [trial.row() for trial in trials])
    (out / "tuning.md").write_text(tuning_markdown(header, trials, chosen))
    log(f"recommended: {chosen.name}; wrote {out / 'tuning.csv'}, {out / 'tuning.md'}")
    return chosen
