"""Run each scenario in its own process, watch it, and stop it if it hangs.

The benchmark's process only watches: it samples the scenario's process tree every
``SAMPLE_INTERVAL_S`` (total RSS, CPU), reads the job records the scenario sends, and
kills the whole tree when the scenario stalls, runs out of time or of memory. It never
imports an OCR engine, so whatever an engine does to its process cannot stop the benchmark.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from benchmarks.comparisons import drivers
from benchmarks.comparisons.scenarios import Plan, Scenario
from benchmarks.harness.method import run_order
from benchmarks.harness.progress import Done, Failed, JobRecord, Jobs, Message, Ready
from benchmarks.harness.sampler import ProcessTree, TreeSample, machine_busy_seconds

SAMPLE_INTERVAL_S = 0.1


class Status(Enum):
    """How a scenario run ended."""

    OK = "ok"
    HUNG = "hung"
    """No job finished for ``Limits.stall_s``: stopped."""
    TIMEOUT = "timeout"
    """Still finishing jobs when its ``Limits.timeout_s`` ran out: stopped."""
    RSS_LIMIT = "rss-limit"
    """Its tree's total RSS passed ``Limits.max_rss_mb``: stopped to protect the machine."""
    FAILED = "failed"
    """It reported an error (for example, its engine would not start)."""
    CRASHED = "crashed"
    """Its process died without a word."""


@dataclass(frozen=True)
class Limits:
    """When to stop a scenario: ``timeout_s`` in all, ``stall_s`` without a finished job
    (counted from the end of warm-up), ``max_rss_mb`` of total RSS; ``shutdown_s`` for the
    pool to shut down after its last job."""

    timeout_s: float
    stall_s: float
    max_rss_mb: float
    shutdown_s: float = 60.0


@dataclass(frozen=True)
class Sample:
    """A reading of the scenario's tree, with the number of jobs finished by then and the
    CPU seconds the whole machine has been busy (to tell how much others used)."""

    tree: TreeSample
    jobs_done: int
    machine_busy_s: float


@dataclass(frozen=True)
class Run:
    """Everything observed in one run of one scenario."""

    scenario: Scenario
    workload: str
    engine: str
    round_index: int
    workers: int
    jobs_planned: int
    status: Status
    message: str
    started: float
    ended: float
    """When the last job came back, or when the run was stopped."""
    ready: Ready | None
    done: Done | None
    records: tuple[JobRecord, ...]
    samples: tuple[Sample, ...]


class _Watch:
    """The parent's bookkeeping for one running scenario (owned by ``run_scenario``)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.started = time.monotonic()
        self.ready: Ready | None = None
        self.done: Done | None = None
        self.records: list[JobRecord] = []
        self.samples: list[Sample] = []
        self.status: Status | None = None
        self.message = ""

    def receive(self, message: Message) -> None:
        if isinstance(message, Ready):
            self.ready = message
        elif isinstance(message, Jobs):
            self.records.extend(message.records)
        elif isinstance(message, Done):
            self.done = message
            self.status = Status.OK
        elif isinstance(message, Failed):
            self.status = Status.FAILED
            self.message = message.message

    def sample(self, tree: ProcessTree) -> None:
        reading = tree.sample()
        self.samples.append(Sample(reading, len(self.records), machine_busy_seconds()))
        if reading.rss_mb > self.limits.max_rss_mb:
            self.status = Status.RSS_LIMIT
            self.message = f"total RSS {reading.rss_mb:.0f} MB > {self.limits.max_rss_mb:g} MB"

    def check_time(self, now: float) -> None:
        if self.ready is not None:
            last_progress = self.records[-1].finished if self.records else self.ready.at
            if now - last_progress > self.limits.stall_s:
                self.status = Status.HUNG
                self.message = f"no job finished for {self.limits.stall_s:g} s"
                return
        if now - self.started > self.limits.timeout_s:
            self.status = Status.TIMEOUT
            self.message = f"stopped after {self.limits.timeout_s:g} s"


def run_scenario(scenario: Scenario, plan: Plan, limits: Limits, round_index: int = 0) -> Run:
    """Run one scenario in a fresh ``spawn`` process and watch it to the end."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=drivers.run, args=(scenario, plan, sender), name=f"bench-{scenario.name}"
    )
    process.start()
    sender.close()
    assert process.pid is not None  # started
    tree = ProcessTree(process.pid)
    watch = _Watch(limits)
    next_sample = watch.started
    while watch.status is None:
        now = time.monotonic()
        if now >= next_sample:
            watch.sample(tree)
            next_sample = now + SAMPLE_INTERVAL_S
        if receiver.poll(max(0.0, next_sample - time.monotonic())):
            try:
                watch.receive(receiver.recv())
            except EOFError:
                process.join(limits.shutdown_s)
                watch.status = Status.CRASHED
                watch.message = f"scenario process exited with code {process.exitcode}"
        if watch.status is None:
            watch.check_time(time.monotonic())
    ended = watch.done.at if watch.done is not None else time.monotonic()
    if watch.status in (Status.OK, Status.FAILED):
        process.join(limits.shutdown_s)
        if process.is_alive():
            watch.message = f"killed: did not shut down within {limits.shutdown_s:g} s"
    tree.kill()
    process.join()
    receiver.close()
    return Run(
        scenario=scenario,
        workload=plan.label,
        engine=plan.engine,
        round_index=round_index,
        workers=plan.workers_for(scenario),
        jobs_planned=len(plan.sources),
        status=watch.status,
        message=watch.message,
        started=watch.started,
        ended=ended,
        ready=watch.ready,
        done=watch.done,
        records=tuple(watch.records),
        samples=tuple(watch.samples),
    )


@dataclass(frozen=True)
class Item:
    """One scenario of one plan, and the limits it runs within."""

    scenario: Scenario
    plan: Plan
    limits: Limits


def run_all(items: tuple[Item, ...], rounds: int, on_run: Callable[[Run], None]) -> list[Run]:
    """Every item, ``rounds`` times, in alternating order; ``on_run`` sees each run."""
    runs = []
    for round_index in range(rounds):
        for item in run_order(items, round_index):
            run = run_scenario(item.scenario, item.plan, item.limits, round_index)
            on_run(run)
            runs.append(run)
    return runs
