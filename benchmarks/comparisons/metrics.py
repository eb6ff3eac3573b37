"""From what a run observed to the measures the report shows.

Definitions (the report repeats them):

- the timed window runs from the end of warm-up (engine or pool ready) to the last result;
- images/s = jobs finished / window; CPU s per image = the tree's CPU time in the window
  (workers that exited included) / jobs finished;
- latency = from submitting a job to getting its result; p99 during recycles uses only the
  jobs whose lifetime overlaps a recycle: from an old worker's last result to its
  replacement's first (workers are told apart by the pid each result names);
- RSS growth per job = least-squares slope of total RSS against jobs finished, over the
  samples taken in the window.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from benchmarks.comparisons.runner import Run, Sample
from benchmarks.harness.method import NAN, percentile, slope
from benchmarks.harness.progress import JobRecord


@dataclass(frozen=True)
class Measures:
    """One run's measures: one row of ``results.csv``, columns in this order; ``nan``
    where a measure does not apply or had too little data."""

    workload: str
    """The engine and its options under one name (``fake-noop``, ``fake-leak``, ``aspose``)."""
    engine: str
    scenario: str
    round_index: int
    status: str
    workers: int
    jobs: int
    jobs_planned: int
    images_per_s: float
    cpu_s_per_image: float
    p50_ms: float
    p99_ms: float
    p99_recycle_ms: float
    recycle_jobs: int
    peak_total_rss_mb: float
    mean_total_rss_mb: float
    """The tree's RSS averaged over the window's time: what a spare held only around
    recycles costs, where the peak counts the worst moment alone."""
    rss_slope_mb_per_job: float
    ready_rss_mb: float
    failed: int
    recycles: int
    exit_causes: str
    """The pool's own count of worker exits by cause, where it keeps one."""
    text_identical: bool | None
    """Every text this run returned is the one most runs of its workload that recognise
    with the same options returned for that input (``None``: not compared)."""
    other_load: float
    """Cores that other processes kept busy during the window, on average: the noise."""
    startup_cpu_s: float
    """CPU time the tree used before the window: interpreters, engines, warm-up."""
    window_s: float
    peak_ray_rss_mb: float
    """The highest total RSS of the tree's Ray processes (servers, agents, actors, idle
    workers), for the Ray backend's scenarios."""
    message: str


def recycle_windows(records: Sequence[JobRecord], workers: int) -> list[tuple[float, float]]:
    """When workers were being replaced, seen from the results alone.

    The first ``workers`` pids to return a result are the first generation; every later pid
    replaced the worker that stopped returning results earliest. The window of a recycle
    runs from the old worker's last result to its replacement's first (a point if the
    replacement was already serving, as a warm spare is).
    """
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for record in records:
        if record.worker_pid is None:
            continue
        first.setdefault(record.worker_pid, record.finished)
        last[record.worker_pid] = record.finished
    by_arrival = sorted(first, key=first.__getitem__)
    replacements = by_arrival[workers:]
    retired = sorted(last, key=last.__getitem__)[: len(replacements)]
    return [
        (last[old], max(last[old], first[new]))
        for old, new in zip(retired, replacements, strict=True)
    ]


def _overlaps(record: JobRecord, windows: Sequence[tuple[float, float]]) -> bool:
    return any(record.submitted <= end and record.finished >= start for start, end in windows)


def _ms(seconds: Iterable[float]) -> list[float]:
    return [value * 1000.0 for value in seconds]


def window_start(run: Run) -> float:
    """When the timed window opened (the end of warm-up)."""
    return run.ready.at if run.ready is not None else run.ended


def in_window(run: Run) -> list[Sample]:
    """The samples taken in the timed window."""
    start = window_start(run)
    return [s for s in run.samples if start <= s.tree.at <= run.ended]


def measure(run: Run) -> Measures:
    """The measures of one run (its text not yet compared with the others')."""
    records = run.records
    window_s = run.ended - window_start(run)
    samples = in_window(run)
    cpu_end = run.done.cpu_s if run.done is not None else _last_cpu(run)
    cpu_start = run.ready.cpu_s if run.ready is not None else NAN
    jobs = len(records)
    windows = recycle_windows(records, run.workers)
    during = [r for r in records if _overlaps(r, windows)]
    exits = run.done.exits if run.done is not None else None
    recycles = len(windows)
    if exits is not None:
        recycles = sum(count for cause, count in exits.items() if cause != "shutdown")
    latencies = _ms(r.finished - r.submitted for r in records)
    return Measures(
        workload=run.workload,
        engine=run.engine,
        scenario=run.scenario.name,
        round_index=run.round_index,
        status=run.status.value,
        workers=run.workers,
        jobs=jobs,
        jobs_planned=run.jobs_planned,
        images_per_s=jobs / window_s if jobs and window_s > 0 else NAN,
        cpu_s_per_image=(cpu_end - cpu_start) / jobs if jobs else NAN,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        p99_recycle_ms=percentile(_ms(r.finished - r.submitted for r in during), 0.99),
        recycle_jobs=len(during),
        peak_total_rss_mb=max((s.tree.rss_mb for s in run.samples), default=NAN),
        mean_total_rss_mb=time_mean([(s.tree.at, s.tree.rss_mb) for s in samples]),
        rss_slope_mb_per_job=slope((s.jobs_done, s.tree.rss_mb) for s in samples),
        ready_rss_mb=samples[0].tree.rss_mb if samples else NAN,
        failed=sum(not r.ok for r in records),
        recycles=recycles,
        exit_causes=" ".join(f"{cause}={count}" for cause, count in sorted((exits or {}).items())),
        text_identical=None,
        other_load=other_load(samples),
        startup_cpu_s=cpu_start,
        window_s=window_s,
        peak_ray_rss_mb=max((s.tree.ray_rss_mb for s in run.samples), default=0.0) or NAN,
        message=run.message,
    )


def time_mean(points: Sequence[tuple[float, float]]) -> float:
    """The mean of a quantity sampled at times ``points[i][0]``, each interval weighted by
    its length (trapezoids)."""
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return points[0][1] if points else NAN
    area = sum((t1 - t0) * (v0 + v1) / 2 for (t0, v0), (t1, v1) in itertools.pairwise(points))
    return area / (points[-1][0] - points[0][0])


def other_load(samples: Sequence[Sample]) -> float:
    """Average cores used by processes outside the tree between the first and last sample."""
    if len(samples) < 2 or samples[-1].tree.at <= samples[0].tree.at:
        return NAN
    first, last = samples[0], samples[-1]
    machine = last.machine_busy_s - first.machine_busy_s
    tree = last.tree.cpu_s - first.tree.cpu_s
    return max(0.0, machine - tree) / (last.tree.at - first.tree.at)


def _last_cpu(run: Run) -> float:
    return run.samples[-1].tree.cpu_s if run.samples else NAN


def representative(runs: Sequence[Measures]) -> Measures:
    """Of several rounds of one scenario, the run with the median throughput."""
    ordered = sorted(runs, key=lambda m: -1.0 if math.isnan(m.images_per_s) else m.images_per_s)
    return ordered[(len(ordered) - 1) // 2]


def consensus(runs: Iterable[Run]) -> dict[str, str]:
    """The text (digest) that most of the runs' successful jobs returned for each input."""
    seen: dict[str, Counter[str]] = {}
    for run in runs:
        for record in run.records:
            if record.digest is not None:
                seen.setdefault(record.source, Counter())[record.digest] += 1
    return {source: counts.most_common(1)[0][0] for source, counts in seen.items()}


def agrees(run: Run, texts: Mapping[str, str]) -> bool:
    """Whether every text ``run`` returned is the consensus text of its input."""
    return all(texts.get(record.source) == record.digest for record in run.records if record.ok)
