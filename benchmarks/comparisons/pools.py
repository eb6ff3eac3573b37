"""The pools under test behind one small interface, so one driver runs them all.

The peers (pebble and ``ProcessPoolExecutor``) get what ocrpool's workers have: one engine
per worker process, created by the pool's initializer with the same recognition options
(the runtime's settings as the scenario gives them), kept in a module global and reused for
every job. The peers start workers with ``spawn``. The Ray
backend runs one actor hosting the same ``OcrPool``, on a Ray started in the scenario's
process (so its servers and workers are in the tree the benchmark measures).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

import pebble

from benchmarks.comparisons.scenarios import Kind, Plan, Scenario
from benchmarks.harness.progress import text_digest
from ocrpool import OcrPool, OcrPoolError, WorkerState
from ocrpool.engines import Engine, create_engine
from ocrpool.scaleout import RayOcrPool
from ocrpool.scaleout.pool import import_ray

WARM_UP_TIMEOUT_S = 600.0
_POLL_S = 0.05
RAY_OBJECT_STORE_MB = 100
_engine: Engine | None = None
"""A peer worker's engine: one per worker process, set by ``start_engine``."""


def start_engine(engine: str, options: dict[str, Any]) -> None:
    """Peer initializer: start this worker's engine."""
    global _engine
    _engine = create_engine(engine, options)
    _engine.start()


def recognize(source: str) -> tuple[str, int]:
    """Peer task: recognise ``source`` with this worker's engine; return the digest of its
    text and the worker's pid."""
    if _engine is None:
        raise RuntimeError("the worker's engine did not start")
    return text_digest(_engine.recognize(source).text), os.getpid()


def recognize_pages(source: str) -> list[str]:
    """Peer task of the pages benchmark: each page's text of ``source``, recognised whole."""
    if _engine is None:
        raise RuntimeError("the worker's engine did not start")
    return [page.text for page in _engine.recognize(source).pages]


def report_pid() -> int:
    """Peer warm-up task: hold the worker briefly, so that the others take the next ones."""
    time.sleep(_POLL_S)
    return os.getpid()


class BenchPool(Protocol):
    """What the driver needs from a pool."""

    def warm_up(self) -> None:
        """Return once every worker's engine is started."""

    def submit(self, source: str) -> Future[Any]: ...

    def outcome(self, future: Future[Any]) -> tuple[str | None, int | None]:
        """The digest of the finished job's text (``None``: it failed), and which worker
        ran it."""

    def exits(self) -> dict[str, int] | None:
        """Worker exits so far by cause, if the pool counts them."""

    def close(self) -> None: ...


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WARM_UP_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {WARM_UP_TIMEOUT_S:g} s")
        time.sleep(_POLL_S)


class OcrPoolBench:
    def __init__(self, plan: Plan, scenario: Scenario) -> None:
        self._pool: OcrPool | RayOcrPool = OcrPool(
            plan.workers_for(scenario),
            engine=plan.engine,
            engine_options=plan.options_for(scenario),
            **scenario.pool_options,
        )

    def warm_up(self) -> None:
        """The constructor waits for the workers; wait for the spares as well."""
        _wait_until(
            lambda: all(w.state is not WorkerState.STARTING for w in self._pool.stats().workers),
            "the spares",
        )

    def submit(self, source: str) -> Future[Any]:
        return self._pool.submit(source)

    def outcome(self, future: Future[Any]) -> tuple[str | None, int | None]:
        try:
            result = future.result()
        except OcrPoolError:
            return None, None
        return (text_digest(result.text) if result.ok else None), result.worker_pid

    def exits(self) -> dict[str, int] | None:
        return self._pool.stats().exits

    def close(self) -> None:
        self._pool.close()


class RayBench(OcrPoolBench):
    """``RayOcrPool`` with one actor, on a local Ray with the plan's CPUs (on loopback), its
    workers at the benchmark's priority."""

    def __init__(self, plan: Plan, scenario: Scenario) -> None:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # read by import ray
        # Ray starts its workers at nice 15, and the OCR workers an actor spawns inherit it:
        # on a machine shared with other work, that alone would decide the comparison.
        os.environ.setdefault("RAY_worker_niceness", "0")  # read by the raylet
        self._ray = import_ray()
        workers = plan.workers_for(scenario)
        self._ray.init(
            num_cpus=workers,
            object_store_memory=RAY_OBJECT_STORE_MB * 1024 * 1024,
            include_dashboard=False,
            log_to_driver=False,
        )
        self._first = plan.sources[0]
        self._pool = RayOcrPool(
            workers,
            actors=1,
            engine=plan.engine,
            engine_options=plan.options_for(scenario),
            **scenario.pool_options,
        )

    def warm_up(self) -> None:
        """The driver learns of the actor's workers from results: run jobs until the
        results show every worker and spare warm."""

        def warm() -> bool:
            self._pool.submit(self._first).exception()
            return all(w.state is not WorkerState.STARTING for w in self._pool.stats().workers)

        _wait_until(warm, "the spares")

    def close(self) -> None:
        self._pool.close()
        self._ray.shutdown()


class _PeerPool(ABC):
    """A peer pool; subclasses say how to submit a call."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    @abstractmethod
    def _call(self, function: Callable[..., Any], *args: Any) -> Future[Any]: ...

    def warm_up(self) -> None:
        """Peers start workers lazily: submit short tasks until every worker has answered,
        which it can only do once its initializer has started the engine."""
        seen: set[int] = set()

        def all_answered() -> bool:
            batch = [self._call(report_pid) for _ in range(self.workers)]
            seen.update(future.result() for future in batch)
            return len(seen) >= self.workers

        _wait_until(all_answered, "the workers")

    def submit(self, source: str) -> Future[Any]:
        return self._call(recognize, source)

    def outcome(self, future: Future[Any]) -> tuple[str | None, int | None]:
        try:
            digest, pid = future.result()
        except Exception:
            return None, None
        return str(digest), int(pid)

    def exits(self) -> dict[str, int] | None:
        return None


class PebbleBench(_PeerPool):
    def __init__(self, plan: Plan, scenario: Scenario) -> None:
        super().__init__(plan.workers_for(scenario))
        self._pool = pebble.ProcessPool(
            max_workers=self.workers,
            initializer=start_engine,
            initargs=(plan.engine, plan.options_for(scenario)),
            context=multiprocessing.get_context("spawn"),
            **scenario.pool_options,
        )

    def _call(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = self._pool.schedule(function, args=args)
        return future

    def close(self) -> None:
        self._pool.close()  # type: ignore[no-untyped-call]
        self._pool.join()


class ExecutorBench(_PeerPool):
    def __init__(self, plan: Plan, scenario: Scenario) -> None:
        super().__init__(plan.workers_for(scenario))
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            initializer=start_engine,
            initargs=(plan.engine, plan.options_for(scenario)),
            mp_context=multiprocessing.get_context("spawn"),
            **scenario.pool_options,
        )

    def _call(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        return self._pool.submit(function, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


_POOLS: dict[Kind, Callable[[Plan, Scenario], BenchPool]] = {
    Kind.OCRPOOL: OcrPoolBench,
    Kind.PEBBLE: PebbleBench,
    Kind.CF_PPE: ExecutorBench,
    Kind.RAY: RayBench,
}


def open_pool(plan: Plan, scenario: Scenario) -> BenchPool:
    """Construct the pool a pooled scenario runs on."""
    return _POOLS[scenario.kind](plan, scenario)
