"""The fake-engine soak: many jobs through one pool per phase, each phase at its own
rate of worker kills, with the supervisor's own RSS, descriptors and threads sampled as
the jobs go, and every invariant checked at the end of each phase."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from .episodes import CHAOS_SETTINGS, Driver, Episode, EpisodeReport, kill_timings, run_episode
from .faults import Fault

SOAK_SETTINGS: dict[str, Any] = {
    **CHAOS_SETTINGS,
    "max_jobs_per_worker": 50,
    "recycle_jitter": 0.1,
    "engine_options": {"balloon_mb": 400},
}
"""Recycling every 50 jobs (the default), no job delay: the pool's own overhead is what
is measured."""
KILL_FAULTS = (Fault.KILL_ANY, Fault.OOM_KILL, Fault.STOP_BUSY)


@dataclasses.dataclass
class Samples:
    """The supervisor process, every ``every`` results: (results, RSS MB, fds, threads)."""

    every: int
    rows: list[tuple[int, float, int, int]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self._me = psutil.Process()

    def __call__(self, done: int) -> None:
        if done % self.every == 0:
            me = self._me
            self.rows.append((done, me.memory_info().rss / 2**20, me.num_fds(), me.num_threads()))

    def slopes(self, skip: float = 0.1) -> dict[str, float | None]:
        """Least-squares slopes per 10,000 jobs, after the first ``skip`` of the run."""
        rows = self.rows[int(len(self.rows) * skip) :]
        return {
            name: _slope([r[0] for r in rows], [float(r[column]) for r in rows], 10_000)
            for column, name in ((1, "rss_mb"), (2, "fds"), (3, "threads"))
        }


def _slope(xs: list[int], ys: list[float], per: int) -> float | None:
    if len(xs) < 3:
        return None
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if not spread:
        return None
    return round(
        sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread * per, 4
    )


def phase(
    jobs: int, kills_per_min: float, poison_rate: float, seed: int, folder: Path
) -> tuple[EpisodeReport, Samples]:
    episode = Episode(
        Driver.IMAP,
        jobs=jobs,
        seed=seed,
        fault_rate=kills_per_min / 60,
        faults=KILL_FAULTS,
        poison_rate=poison_rate,
        settings=SOAK_SETTINGS,
        rss_slack_mb=50.0,
    )
    samples = Samples(every=max(1, jobs // 200))
    return run_episode(episode, folder, on_result=samples), samples


def summarise(name: str, report: EpisodeReport, samples: Samples) -> dict[str, Any]:
    episode = report.episode
    return {
        "phase": name,
        "jobs": episode.jobs,
        "kills_per_min": round(episode.fault_rate * 60, 1),
        "poison_rate": episode.poison_rate,
        "seed": episode.seed,
        "elapsed_s": round(report.elapsed_s, 1),
        "jobs_per_s": round(report.throughput, 1),
        "faults_injected": {fault.value: n for fault, n in sorted(report.injected.items())},
        "poison_inputs": dict(Counter(k for k in _kinds(report) if k != "good")),
        "operations": report.log.summary(),
        "worker_exits": dict(report.stats.exits),
        "sigstopped_workers_never_ended": len(report.stuck),
        "kills": kill_timings(report),
        "supervisor_slopes_per_10k_jobs": samples.slopes(),
        "supervisor_samples": samples.rows,
        "problems": report.problems,
    }


def _kinds(report: EpisodeReport) -> list[str]:
    log = report.log
    return [log.kind(op).value for op in range(log.invoked)]


def soak(
    jobs: int, kills_per_min: list[float], poison_rate: float, seed: int, folder: Path
) -> list[dict[str, Any]]:
    """One phase per kill rate, ``jobs`` split evenly; the first phase usually 0 kills."""
    per_phase = jobs // len(kills_per_min)
    phases = []
    for number, rate in enumerate(kills_per_min):
        started = time.monotonic()
        poison = poison_rate if rate else 0.0
        report, samples = phase(per_phase, rate, poison, seed + number, folder / f"p{number}")
        summary = summarise(f"{rate:g} kills/min", report, samples)
        print(
            f"soak phase {summary['phase']}: {per_phase} jobs in "
            f"{time.monotonic() - started:.0f}s, {summary['jobs_per_s']} jobs/s, "
            f"lost {summary['operations']['lost']}, problems {len(report.problems)}",
            flush=True,
        )
        phases.append(summary)
    return phases
