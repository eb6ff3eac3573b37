"""The service's one ``OcrPool`` and its life: starting, serving, draining, stopped.

::

    start() --thread: OcrPool(...)--> SERVING --begin_drain()--> DRAINING --> STOPPED
         \\--EngineStartError-------> BROKEN  --begin_drain()-------------------^

The pool is built in a thread, so the server answers ``/healthz`` (and ``/readyz`` with
503) while the engines warm up. ``begin_drain`` (SIGTERM) refuses new jobs and lets the
pool finish what it holds; past ``drain_timeout_s`` it fails the rest with ``PoolClosed``
and stops the workers.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import logging
from concurrent.futures import Future
from typing import Any

from ocrpool.engines.base import Source
from ocrpool.errors import EngineStartError, PoolClosed
from ocrpool.pool.executor import OcrPool
from ocrpool.results import OcrResult
from ocrpool.service.errors import NotReady
from ocrpool.stats import PoolState, PoolStats

log = logging.getLogger("ocrpool")


class ServiceState(str, enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    BROKEN = "broken"
    """The pool could not start; every job gets its ``EngineStartError``."""
    DRAINING = "draining"
    STOPPED = "stopped"


class PoolLifecycle:
    def __init__(self, pool_options: dict[str, Any], drain_timeout_s: float) -> None:
        self._options = pool_options
        self._drain_timeout_s = drain_timeout_s
        self.state = ServiceState.STARTING
        self.pool: OcrPool | None = None
        self._start_error: EngineStartError | None = None
        self._starting: asyncio.Task[None] | None = None
        self._draining: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Build the pool in a thread; returns at once."""
        self._starting = asyncio.create_task(self._start())

    def submit(self, source: Source, label: str) -> Future[OcrResult]:
        """Hand one input to the pool, or raise why it cannot take jobs now."""
        if self.state is ServiceState.STARTING:
            raise NotReady("the workers are warming up; GET /readyz says when they are ready")
        if self.state is ServiceState.BROKEN and self._start_error is not None:
            # A copy: raising one instance again and again would grow its traceback.
            raise copy.copy(self._start_error)
        if self.pool is None or self.state is not ServiceState.SERVING:
            raise PoolClosed("the service is stopping")
        return self.pool.submit(source, label=label)

    def stats(self) -> PoolStats | None:
        return None if self.pool is None else self.pool.stats()

    def ready(self) -> bool:
        """Serving, the pool running (not broken), and at least one warm worker."""
        stats = self.stats()
        return (
            self.state is ServiceState.SERVING
            and stats is not None
            and stats.state is PoolState.RUNNING
            and stats.ready >= 1
        )

    def begin_drain(self) -> None:
        """Refuse new jobs and stop the pool within the drain timeout; idempotent."""
        if self._draining is None:
            log.info("draining: finishing accepted jobs within %g s", self._drain_timeout_s)
            self.state = ServiceState.DRAINING
            self._draining = asyncio.create_task(self._drain())

    async def stop(self) -> None:
        """``begin_drain`` and wait until every worker has exited."""
        self.begin_drain()
        assert self._draining is not None
        await self._draining

    async def _start(self) -> None:
        try:
            pool = await asyncio.to_thread(OcrPool, **self._options)
        except Exception as error:
            log.error("the pool could not start: %s", error)
            self._start_error = (
                error
                if isinstance(error, EngineStartError)
                else EngineStartError(f"the pool could not start: {error}")
            )
            if self.state is ServiceState.STARTING:
                self.state = ServiceState.BROKEN
            return
        self.pool = pool
        if self.state is ServiceState.STARTING:
            self.state = ServiceState.SERVING
            log.info("serving: %d workers warm", pool.stats().ready)

    async def _drain(self) -> None:
        if self._starting is not None:
            await self._starting
        pool = self.pool
        if pool is not None:
            closing = asyncio.ensure_future(asyncio.to_thread(pool.close))
            try:
                await asyncio.wait({closing}, timeout=self._drain_timeout_s)
            finally:
                if not closing.done():
                    log.warning("drain timeout: failing the jobs left with PoolClosed")
                    pool.shutdown(wait=False, cancel_pending=True)
            await closing
        self.state = ServiceState.STOPPED
        log.info("stopped: every worker has exited")
