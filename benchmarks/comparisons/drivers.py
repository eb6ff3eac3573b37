"""The scenario process: run one scenario's jobs and report them as they finish.

``run`` is the entry point of the child process the benchmark starts for each scenario.
It never returns an exception to the parent: a failure becomes a ``Failed`` message.
"""

from __future__ import annotations

import itertools
import math
import os
import queue
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from benchmarks.comparisons.pools import BenchPool, open_pool
from benchmarks.comparisons.scenarios import Kind, Plan, Scenario
from benchmarks.harness.progress import JobRecord, Reporter, text_digest
from benchmarks.harness.sampler import tree_cpu_seconds
from ocrpool.engines import create_engine
from ocrpool.results import Recognition


def run(scenario: Scenario, plan: Plan, connection: Connection) -> None:
    """Run ``scenario`` and report to ``connection`` (child process entry point)."""
    reporter = Reporter(connection)
    try:
        _DRIVERS[scenario.kind](scenario, plan, reporter)
    except Exception as exc:
        reporter.failed(f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()


def _recognize_once(recognize: Callable[[str], Recognition], source: str) -> str | None:
    """Run one job: the digest of its text; an engine error is a failed job (``None``),
    not a failed scenario."""
    try:
        return text_digest(recognize(source).text)
    except Exception:
        return None


def _within_budget(plan: Plan) -> Iterator[str]:
    """The plan's inputs, until its time budget (counted from now) runs out."""
    deadline = math.inf if plan.time_budget_s is None else time.monotonic() + plan.time_budget_s
    for source in plan.sources:
        if time.monotonic() > deadline:
            return
        yield source


def _inprocess(scenario: Scenario, plan: Plan, reporter: Reporter) -> None:
    engine = create_engine(plan.engine, plan.options_for(scenario))
    engine.start()
    reporter.ready(tree_cpu_seconds())
    pid = os.getpid()
    for source in _within_budget(plan):
        submitted = time.monotonic()
        digest = _recognize_once(engine.recognize, source)
        reporter.job(JobRecord(source, submitted, time.monotonic(), digest, pid))
    reporter.done(tree_cpu_seconds())
    engine.close()


def _inprocess_leak(scenario: Scenario, plan: Plan, reporter: Reporter) -> None:
    """A new engine for every job, started and used once, never closed."""
    options = plan.options_for(scenario)
    reporter.ready(tree_cpu_seconds())
    pid = os.getpid()
    for source in _within_budget(plan):
        submitted = time.monotonic()
        engine = create_engine(plan.engine, options)
        try:
            engine.start()
        except Exception:
            digest = None
        else:
            digest = _recognize_once(engine.recognize, source)
        reporter.job(JobRecord(source, submitted, time.monotonic(), digest, pid))
    reporter.done(tree_cpu_seconds())


def _pooled(scenario: Scenario, plan: Plan, reporter: Reporter) -> None:
    pool = open_pool(plan, scenario)
    try:
        pool.warm_up()
        reporter.ready(tree_cpu_seconds())
        depth = plan.workers_for(scenario) * plan.in_flight
        _drive(pool, _within_budget(plan), depth, reporter)
        reporter.done(tree_cpu_seconds(), pool.exits())
    finally:
        pool.close()


def _drive(pool: BenchPool, sources: Iterator[str], depth: int, reporter: Reporter) -> None:
    """Keep ``depth`` jobs submitted: submit the next one as each result comes back."""
    finished: queue.SimpleQueue[tuple[str, float, float, Future[Any]]] = queue.SimpleQueue()

    def submit(source: str) -> None:
        submitted = time.monotonic()
        pool.submit(source).add_done_callback(
            lambda future: finished.put((source, submitted, time.monotonic(), future))
        )

    in_flight = 0
    for source in itertools.islice(sources, depth):
        submit(source)
        in_flight += 1
    while in_flight:
        source, submitted, done_at, future = finished.get()
        in_flight -= 1
        digest, worker_pid = pool.outcome(future)
        reporter.job(JobRecord(source, submitted, done_at, digest, worker_pid))
        following = next(sources, None)
        if following is not None:
            submit(following)
            in_flight += 1


_DRIVERS: dict[Kind, Callable[[Scenario, Plan, Reporter], None]] = {
    Kind.INPROCESS: _inprocess,
    Kind.INPROCESS_LEAK: _inprocess_leak,
    Kind.OCRPOOL: _pooled,
    Kind.PEBBLE: _pooled,
    Kind.CF_PPE: _pooled,
    Kind.RAY: _pooled,
}
