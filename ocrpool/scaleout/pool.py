"""``RayOcrPool``: the ``OcrPool`` surface over actors spread across a Ray cluster.

Each actor hosts a local ``OcrPool`` (the unit of isolation: recycling, spares, timeouts,
crash retries and quarantine work as on one machine); the driver keeps a bounded number of
calls in flight per actor and hands every caller one result per input. Ray is imported
only when a pool is created, so ``ocrpool`` works without it.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ocrpool.engines.base import JobOptions, Source
from ocrpool.exports import ExportFormat
from ocrpool.pool.config import PoolConfig, check_types
from ocrpool.pool.documents import PageJobs
from ocrpool.pool.front import PoolFront
from ocrpool.results import OcrResult
from ocrpool.scaleout.actor import Hello, PoolActor
from ocrpool.scaleout.errors import ActorsNotReady, RayNotInstalled, RayUnavailable
from ocrpool.scaleout.stats import ActorInfo, ActorState
from ocrpool.stats import PoolStats

MB = 1024 * 1024
MEMORY_PER_WORKER_MB = 1024.0
"""What an actor declares per worker and spare when ``max_rss_mb`` sets no limit."""
ACTOR_PROCESS_S = 10.0
"""Ray's part of an actor's start, before its pool starts an engine: placing it and
starting its process, a Python importing Ray and ocrpool (2-3 s on a quiet 2-core machine,
more on a busy one: ``start_timeout`` alone, 4 s in a test, was not enough)."""


def import_ray() -> Any:
    """Ray, or ``RayNotInstalled`` saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise RayNotInstalled(str(error)) from None
    return ray


@dataclass(frozen=True)
class _Arguments:
    """``RayOcrPool``'s own arguments, checked as a ``PoolConfig`` is, before Ray starts."""

    actors: int | None
    ray_address: str | None
    ship_bytes: bool
    max_in_flight_mb: float
    actor_retries: int
    actor_restarts: int

    def __post_init__(self) -> None:
        check_types(self, sizes_mb=("max_in_flight_mb",))
        if self.actors is not None and self.actors < 1:
            raise ValueError("actors must be at least 1")
        if not self.max_in_flight_mb > 0:
            raise ValueError("max_in_flight_mb must be positive")
        if min(self.actor_retries, self.actor_restarts) < 0:
            raise ValueError("actor_retries and actor_restarts must be 0 or more")


class RayOcrPool(PoolFront):
    """``OcrPool``'s API over ``actors`` Ray actors, each hosting an ``OcrPool``.

    ``actors`` defaults to one per live node; ``workers`` is per actor (default: the
    cluster's CPUs shared among the actors). Every other keyword argument is the local
    pool's (``engine``, ``max_jobs_per_worker``, ``spares``, ...). Each actor declares
    ``workers`` CPUs and the memory its pool may hold to Ray, is never detached, and is
    restarted by Ray up to ``actor_restarts`` times; an input whose actor was lost is sent
    again up to ``actor_retries`` times, then fails with ``ActorLost``. Inputs travel as
    absolute paths (the nodes must share the files), or with ``ship_bytes`` as their
    content, at most ``max_in_flight_mb`` of it at once. Without ``ray_address`` the pool
    uses the Ray the process is connected to, else ``ray.init()``'s default: ``RAY_ADDRESS``
    or a new local Ray, which it stops at close.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        actors: int | None = None,
        ray_address: str | None = None,
        ship_bytes: bool = False,
        max_in_flight_mb: float = 64.0,
        actor_retries: int = 2,
        actor_restarts: int = 3,
        **settings: Any,
    ) -> None:
        super().__init__()
        if "on_worker_exit" in settings:
            raise ValueError("on_worker_exit runs in the actors with Ray: read stats().exits")
        _Arguments(actors, ray_address, ship_bytes, max_in_flight_mb, actor_retries, actor_restarts)
        # Bad ones fail before Ray; 0 too, which ``_start`` would take as "not given".
        config = PoolConfig(**{"workers": 1 if workers is None else workers, **settings})
        # Page spans name a file the nodes share: shipped bytes are split by each actor's pool.
        self._split = None if ship_bytes else config.page_jobs
        self._exports = config.merged_exports
        ray = import_ray()
        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            _init_keeping_sigterm(ray, ray_address)
        try:
            self._start(ray, workers, actors, settings, actor_restarts)
        except BaseException:
            self._stop_ray()
            raise
        from ocrpool.scaleout.dispatch import Dispatcher  # imports Ray

        self._dispatcher = Dispatcher(
            self._slots,
            retries=actor_retries,
            ship_bytes=ship_bytes,
            max_bytes=int(max_in_flight_mb * MB),
            back_within_s=_ready_within_s(config),
        )

    def _start(
        self,
        ray: Any,
        workers: int | None,
        actors: int | None,
        settings: dict[str, Any],
        restarts: int,
    ) -> None:
        from ocrpool.scaleout.dispatch import Slot

        nodes = [node for node in ray.nodes() if node["Alive"]]
        actors = actors or len(nodes)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        settings = {**settings, "workers": workers or max(1, cpus // actors)}
        config = PoolConfig(**settings)
        # the node hosting it decides ``spares=None`` by its own cores: count the spare
        spares = 1 if config.spares is None else config.spares
        memory_mb = (config.workers + spares) * (config.max_rss_mb or MEMORY_PER_WORKER_MB)
        demand = {"CPU": config.workers, "memory": memory_mb * MB}
        not_ready: Any = dict(actors=actors, num_cpus=config.workers, memory_mb=memory_mb)
        if not any(_fits(node["Resources"], demand) for node in nodes):
            raise ActorsNotReady(
                f"no node of the Ray cluster has {config.workers} CPUs and {memory_mb:.0f} MB "
                "for an actor: use fewer --workers per actor, or a lower --max-rss",
                waited_s=0.0,
                **not_ready,
            )
        remote = ray.remote(PoolActor)
        run = uuid.uuid4().hex[:8]
        names = [f"ocrpool-{run}-{index}" for index in range(actors)]
        handles = [
            remote.options(
                name=name,
                num_cpus=config.workers,
                memory=int(memory_mb * MB),
                max_restarts=restarts,
                max_task_retries=0,  # the dispatcher sends a lost call again, and counts it
                max_concurrency=config.window + 2,  # room for close() beside the calls
                scheduling_strategy="SPREAD",
            ).remote(settings)
            for name in names
        ]
        self._slots = [
            Slot(name, handle, config.window) for name, handle in zip(names, handles, strict=True)
        ]
        waited = _ready_within_s(config)
        started = time.monotonic()
        try:
            hellos: list[Hello] = ray.get([h.hello.remote() for h in handles], timeout=waited)
        except Exception as error:
            self._kill_actors()
            raise ActorsNotReady(
                f"the {actors} actors were not all ready: {type(error).__name__}: {error}",
                waited_s=round(time.monotonic() - started, 1),
                **not_ready,
            ) from None
        for slot, hello in zip(self._slots, hellos, strict=True):
            slot.pid, slot.node, slot.state = hello.pid, hello.node, ActorState.READY
            slot.pids.add(hello.pid)
            if hello.error is not None:
                self._kill_actors()
                raise hello.error

    # ---- the pool surface ---------------------------------------------------------------

    @property
    def window(self) -> int:
        """Jobs ``imap`` keeps submitted: twice what the actors hold, so each finds its
        next job queued in the driver."""
        return 2 * sum(slot.capacity for slot in self._slots)

    def _submit(
        self, source: Source, label: str, raises: bool, options: JobOptions | None
    ) -> Future[OcrResult]:
        return self._dispatcher.submit(source, label, raises, options)

    def _page_jobs(self, source: Source) -> PageJobs | None:
        """Documents given as paths are split here, their pages spread across the actors;
        bytes go whole to one actor, whose pool splits them across its workers (a temp
        file here would not be on the other nodes)."""
        return None if isinstance(source, bytes) else self._split

    def _export_formats(self) -> tuple[ExportFormat, ...]:
        return self._exports

    def _stats(self) -> PoolStats:
        """The whole cluster's ``PoolStats``: workers of every actor, exits by cause (with
        ``actor_lost``), retries of lost calls and of crashed workers, jobs per input."""
        return self._dispatcher.stats()

    def actors(self) -> tuple[ActorInfo, ...]:
        """Each actor's name, state, node, pid, restarts, calls in flight and own stats."""
        return self._dispatcher.actors()

    def close(self) -> None:
        """Finish every queued job, close the actors' pools, and kill the actors."""
        self.shutdown(wait=True)

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Stop the pool; ``cancel_pending`` fails queued jobs with ``PoolClosed`` and
        cancels the running ones in every actor's pool."""
        if self._dispatcher.stop(cancel=cancel_pending, wait=wait) and wait:
            self._stop_ray()

    def _kill_actors(self) -> None:
        for slot in self._slots:
            self._ray.kill(slot.handle, no_restart=True)

    def _stop_ray(self) -> None:
        if self._owns_ray:
            self._owns_ray = False
            self._ray.shutdown()


def _fits(resources: dict[str, float], demand: dict[str, float]) -> bool:
    return all(resources.get(name, 0.0) >= amount for name, amount in demand.items())


def _init_keeping_sigterm(ray: Any, address: str | None) -> None:
    """``ray.init`` installs its own SIGTERM handler (exit at once); the caller's decides
    what SIGTERM means (``ocrpool run`` finishes the record it is writing)."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None
    try:
        ray.init(address=address, include_dashboard=False)
    except Exception as error:  # Ray raises ConnectionError, ValueError, RuntimeError...
        where = address or "$RAY_ADDRESS or a new local Ray"
        raise RayUnavailable(f"cannot reach Ray at {where}: {error}", address=address) from None
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _ready_within_s(config: PoolConfig) -> float:
    """How long an actor may take to say hello, first or after Ray restarted it: Ray's
    start of its process, then its pool's failed starts in a row, each up to
    ``start_timeout``."""
    return ACTOR_PROCESS_S + config.start_timeout * config.max_start_failures
