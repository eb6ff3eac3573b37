"""Chaos episodes: jobs flow through an ``OcrPool`` (by ``submit``, ``imap`` or asyncio)
while the monkey injects faults; then every invariant is checked.

Each operation gets an input of its own: a symlink named ``<op>-<kind>.png`` to a file of
its kind, made when the driver asks for it and removed when its result is in, so a soak
of millions of jobs keeps a handful of files. The fake engine reads the name through the
link, so ``crash``, ``abort``, ``hang`` and ``balloon`` in it inject those faults.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import os
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrpool import (
    OcrPool,
    OcrPoolError,
    OcrResult,
    PoolState,
    PoolStats,
    WorkerExit,
    WorkerState,
)

from .faults import POISON, SIGNAL_FAULTS, STOPS, Fault, InputKind, Kill, Monkey
from .invariants import Baseline, exactly_once, no_orphans, resources_back, stats_agree
from .oplog import OpLog

CHAOS_SETTINGS: dict[str, Any] = dict(
    engine="fake",
    workers=2,
    spares=1,
    retries=2,
    job_timeout=2.0,
    kill_grace=0.5,
    max_jobs_per_worker=50,
    max_rss_mb=200,
    hard_rss_mb=300,
    rss_sample_interval=0.05,
    engine_options={"balloon_mb": 400},
)
"""A pool that ends a hang or a SIGSTOPped worker in seconds and a balloon at 300 MB."""


_ACTIVE = (WorkerState.IDLE, WorkerState.BUSY)


class Driver(str, enum.Enum):
    SUBMIT = "submit"
    """Futures from two threads at once, with ``add_done_callback``."""
    IMAP = "imap"
    ASYNCIO = "asyncio"
    """``aimap`` in an event loop."""


@dataclass(frozen=True)
class Episode:
    driver: Driver
    jobs: int
    seed: int
    fault_rate: float = 0.0
    """Signal faults per second (``Monkey``)."""
    faults: tuple[Fault, ...] = SIGNAL_FAULTS
    poison_rate: float = 0.0
    """The fraction of inputs that crash, abort, hang or balloon."""
    poisons: tuple[Fault, ...] = tuple(POISON)
    settings: Mapping[str, Any] = field(default_factory=lambda: CHAOS_SETTINGS)
    rss_slack_mb: float = 30.0
    min_faults: int = 0
    """Faults the monkey must have injected before the last input is handed over: the
    inputs are paced by them, so they are spread over the episode however fast the
    machine runs its jobs."""
    counted: Fault | None = None
    """The kind ``min_faults`` counts (``None``: every kind)."""


@dataclass
class EpisodeReport:
    episode: Episode
    log: OpLog
    injected: Counter[Fault]
    kills: list[Kill]
    stuck: list[int]
    """SIGSTOPped workers the pool never ended (the monkey did)."""
    pool_states: Counter[PoolState]
    """The pool's state each time the monkey looked, while jobs flowed."""
    stats: PoolStats
    exits: list[WorkerExit]
    events: WorkerEvents
    elapsed_s: float
    problems: list[str]

    @property
    def throughput(self) -> float:
        return self.log.invoked / self.elapsed_s if self.elapsed_s else 0.0


class Inputs:
    """One input per operation, as a symlink to the file of its kind."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.targets = {}
        for kind in InputKind:
            target = folder / f"{kind.value}.png"
            target.write_bytes(b"fake image")
            self.targets[kind] = target

    def make(self, op: int, kind: InputKind) -> str:
        path = self.folder / f"{op}-{kind.value}.png"
        path.symlink_to(self.targets[kind])
        return str(path)

    @staticmethod
    def op_of(source: str) -> int:
        return int(os.path.basename(source).split("-", 1)[0])

    @staticmethod
    def remove(source: str) -> None:
        os.unlink(source)


class WorkerEvents(logging.Handler):
    """When workers were started, became warm and exited, from the pool's own log (the
    supervisor logs each as it happens, in its thread)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ready: list[float] = []
        self.exited: dict[int | None, float] = {}  # None: lost while forked

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if record.msg.startswith("worker %d ready"):
            self.ready.append(now)
        elif (
            record.args
            and isinstance(record.args, tuple)
            and isinstance(record.args[0], WorkerExit)
        ):
            self.exited.setdefault(record.args[0].pid, now)

    def __enter__(self) -> WorkerEvents:
        logger = logging.getLogger("ocrpool")
        self._level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        logger = logging.getLogger("ocrpool")
        logger.removeHandler(self)
        logger.setLevel(self._level)

    def after_kill(self, kill: Kill) -> tuple[float | None, float | None]:
        """Seconds from ``kill`` to the pool seeing the exit, and to the next worker warm."""
        exited = self.exited.get(kill.pid)
        warm = next((t for t in self.ready if t >= kill.at), None)
        return (
            None if exited is None else exited - kill.at,
            None if warm is None else warm - kill.at,
        )


def plan(episode: Episode) -> Iterator[InputKind]:
    """The kind of each operation's input, from the episode's seed."""
    rng = random.Random(episode.seed)
    kinds = [POISON[fault] for fault in episode.poisons]
    for _ in range(episode.jobs):
        poisoned = kinds and rng.random() < episode.poison_rate
        yield rng.choice(kinds) if poisoned else InputKind.GOOD


Recorder = Callable[[OcrResult], None]


def _drive_imap(pool: OcrPool, sources: Iterator[str], record: Recorder) -> None:
    for result in pool.imap(sources, ordered=False):
        record(result)


def _drive_asyncio(pool: OcrPool, sources: Iterator[str], record: Recorder) -> None:
    async def main() -> None:
        async for result in pool.aimap(sources):
            record(result)

    asyncio.run(main())


def _drive_submit(pool: OcrPool, sources: Iterator[str], record: Recorder) -> None:
    """Two threads submit from one source stream; at most ``window`` futures in flight."""
    window = threading.BoundedSemaphore(pool.config.window)
    lock = threading.Lock()
    source_lock = threading.Lock()

    def done(source: str, future: Future[OcrResult]) -> None:
        try:
            result = future.result()
        except OcrPoolError as error:
            result = OcrResult(source, error=error, attempts=())
        with lock:
            record(result)
        window.release()

    def submitter() -> None:
        while True:
            window.acquire()
            with source_lock:
                source = next(sources, None)
            if source is None:
                window.release()
                return
            pool.submit(source).add_done_callback(functools.partial(done, source))

    threads = [threading.Thread(target=submitter) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in range(pool.config.window):  # every future has called back
        window.acquire()


DRIVERS = {Driver.SUBMIT: _drive_submit, Driver.IMAP: _drive_imap, Driver.ASYNCIO: _drive_asyncio}


def run_episode(
    episode: Episode,
    folder: Path,
    *,
    on_result: Callable[[int], None] | None = None,
) -> EpisodeReport:
    """Run ``episode`` and check every invariant; ``on_result(n)`` is called after the
    ``n``-th result (a soak samples the supervisor's resources there)."""
    inputs = Inputs(folder)
    stops = Fault.STOP_BUSY in episode.faults and episode.fault_rate > 0
    log = OpLog(stops=stops)
    exits: list[WorkerExit] = []
    baseline = Baseline.take()

    def sources(monkey: Monkey) -> Iterator[str]:
        paced = episode.min_faults > 0
        for n, kind in enumerate(plan(episode), 1):
            if paced:  # a monkey that cannot inject for a minute ends the pacing
                due = -(-episode.min_faults * n // episode.jobs)
                paced = monkey.wait_injected(episode.counted, due)
            yield inputs.make(log.invoke(kind), kind)

    def record(result: OcrResult) -> None:
        log.complete(Inputs.op_of(result.input), result)
        inputs.remove(result.input)
        if on_result is not None:
            on_result(log.completions)

    rng = random.Random(episode.seed + 1)
    with WorkerEvents() as events:
        pool = OcrPool(**episode.settings, on_worker_exit=exits.append)
        started = time.monotonic()
        with pool, Monkey(pool, rng, episode.fault_rate, episode.faults) as monkey:
            DRIVERS[episode.driver](pool, sources(monkey), record)
            elapsed = time.monotonic() - started
    stats = pool.stats()
    problems = exactly_once(log) + stats_agree(stats, log) + no_orphans()
    problems += resources_back(baseline, rss_slack_mb=episode.rss_slack_mb)
    return EpisodeReport(
        episode,
        log,
        monkey.injected,
        monkey.kills,
        monkey.stuck,
        monkey.pool_states,
        stats,
        exits,
        events,
        elapsed,
        problems,
    )


def kill_timings(report: EpisodeReport) -> dict[str, Any]:
    """How the pool answered the kills of active workers: detection, the next warm
    worker, and how often a warm spare was there to take the slot at once."""
    active = [k for k in report.kills if k.fault not in STOPS and k.state in _ACTIVE]
    detect, warm = [], []
    for kill in active:
        seen, ready = report.events.after_kill(kill)
        if seen is not None:
            detect.append(seen)
        if ready is not None:
            warm.append(ready)
    hits = sum(k.spare_warm for k in active)
    return {
        "active_worker_kills": len(active),
        "spare_warm_at_kill": hits,
        "spare_hit_rate": round(hits / len(active), 3) if active else None,
        "kill_to_exit_seen_ms": _percentiles(detect),
        "kill_to_next_warm_worker_ms": _percentiles(warm),
    }


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ms = sorted(v * 1000 for v in values)
    return {
        "p50": round(statistics.median(ms), 1),
        "p95": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1),
        "max": round(ms[-1], 1),
    }
