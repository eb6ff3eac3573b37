"""What must hold after every episode, as functions that return the problems found.

Each check returns a list of plain sentences (empty: it holds), so a test asserts it is
empty and the long runs count and publish what they found instead of stopping.
"""

from __future__ import annotations

import gc
import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import forkserver, resource_tracker
from pathlib import Path

import psutil

from ocrpool import PoolState, PoolStats
from tests.support.served import pool_workers

from .oplog import OpLog


@dataclass(frozen=True)
class Baseline:
    """This (the supervisor's) process before an episode."""

    fds: int
    threads: int
    rss_mb: float

    @classmethod
    def take(cls) -> Baseline:
        """Measured once the interpreter's lasting helpers run (the fork server and the
        resource tracker keep descriptors from their start on) and garbage is collected."""
        resource_tracker.ensure_running()
        forkserver.ensure_running()
        gc.collect()
        me = psutil.Process()
        return cls(me.num_fds(), threading.active_count(), me.memory_info().rss / 2**20)


def resources_back(baseline: Baseline, *, rss_slack_mb: float) -> list[str]:
    """Descriptors and threads exactly as before; RSS within ``rss_slack_mb``."""
    now = Baseline.take()
    problems = []
    if now.fds != baseline.fds:
        problems.append(f"supervisor fds {baseline.fds} -> {now.fds}")
    if now.threads != baseline.threads:
        problems.append(f"supervisor threads {baseline.threads} -> {now.threads}")
    if now.rss_mb > baseline.rss_mb + rss_slack_mb:
        problems.append(f"supervisor RSS {baseline.rss_mb:.0f} -> {now.rss_mb:.0f} MB")
    return problems


def exactly_once(log: OpLog) -> list[str]:
    """Every operation ended exactly once, ok or with a typed error naming its cause."""
    problems = [f"{log.lost} operations lost"] if log.lost else []
    if log.duplicated:
        problems.append(f"{log.duplicated} operations completed twice")
    return problems + log.violations


def stats_agree(stats: PoolStats, log: OpLog) -> list[str]:
    """The pool's own books: closed, and every submitted job counted once."""
    problems = []
    if stats.state is not PoolState.CLOSED:
        problems.append(f"pool state {stats.state.value} after close")
    if stats.completed + stats.failed != stats.submitted:
        problems.append(
            f"pool counted {stats.completed} completed + {stats.failed} failed "
            f"of {stats.submitted} submitted"
        )
    if stats.submitted != log.invoked:
        problems.append(f"pool saw {stats.submitted} jobs, the log {log.invoked}")
    return problems


def no_orphans() -> list[str]:
    """No worker left below this process, and no zombie anywhere below it."""
    me = psutil.Process()
    problems = [f"worker {w.pid} still alive" for w in pool_workers(me)]
    for child in me.children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                problems.append(f"zombie {child.pid}")
        except psutil.NoSuchProcess:
            continue
    return problems


def tagged(tag: str, variable: str) -> Iterator[psutil.Process]:
    """Live processes anywhere (orphans included) whose environment has ``variable=tag``."""
    for process in psutil.process_iter():
        try:
            if process.environ().get(variable) == tag and process.status() != "zombie":
                yield process
        except psutil.Error:
            continue


def records(out: Path) -> tuple[list[dict[str, object]], list[str]]:
    """The JSONL records of ``out`` and the problems reading them (every line must parse)."""
    parsed, problems = [], []
    for number, line in enumerate(out.read_bytes().splitlines(), start=1):
        try:
            parsed.append(json.loads(line))
        except ValueError:
            problems.append(f"{out}:{number} does not parse: {line[:80]!r}")
    return parsed, problems


def output_exactly_once(out: Path, inputs: Iterable[str]) -> list[str]:
    """Every input has exactly one record in ``out``, and every record parses."""
    parsed, problems = records(out)
    counts = Counter(str(r["path"]) for r in parsed)
    expected = set(inputs)
    missing = expected - set(counts)
    extra = set(counts) - expected
    twice = [path for path, n in counts.items() if n > 1]
    if missing:
        problems.append(f"{len(missing)} inputs without a record, e.g. {sorted(missing)[0]}")
    if extra:
        problems.append(f"{len(extra)} records of no input, e.g. {sorted(extra)[0]}")
    if twice:
        problems.append(f"{len(twice)} inputs recorded more than once, e.g. {twice[0]}")
    return problems
