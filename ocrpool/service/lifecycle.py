"""The service's one ``OcrPool`` and its life: starting, serving, broken and rebuilt,
draining, stopped.

::

    start() --thread: OcrPool(...)--> SERVING --begin_drain()--> DRAINING --> STOPPED
       |                               |   ^                         ^
       EngineStartError        pool BROKEN |                         |
       v                               v   | a rebuild warms up      |
       BROKEN <------------------------+---+  (thread: OcrPool(...)) |
         \\--- wait 1 s, 2 s, ... 30 s; build again -------begin_drain-/

The pool is built in a thread, so the server answers ``/healthz`` (and ``/readyz`` with
503) while the engines warm up. A pool breaks only when its engines cannot start
(``EngineStartError``): the service then answers every job with that error (503, with
``Retry-After``), shuts the broken pool down and builds a new one in the background,
waiting 1 s before the first attempt and twice as long after each failed one (at most
30 s). Once it has been broken for longer than ``unhealthy_after_s`` it says so where
process managers look: ``healthy()`` (``GET /healthz``) turns false, so one that restarts
unhealthy services restarts it. ``begin_drain`` (SIGTERM) refuses new requests and lets the
pool finish what it holds, and the inputs of requests let in before it (``admitting``: an
upload under way) once they are read; past ``drain_timeout_s``, or at once on ``stop_now``
(a second signal), it fails the rest with ``PoolClosed`` and stops the workers. A pool
still being built holds no job: it is stopped at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import enum
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from ocrpool.engines.base import JobOptions, Source
from ocrpool.errors import EngineConfigError, EngineStartError, OcrPoolError, PoolClosed
from ocrpool.pool.executor import OcrPool
from ocrpool.results import OcrResult
from ocrpool.service.errors import NotReady
from ocrpool.stats import ExitCause, PoolState, PoolStats, WorkerExit

log = logging.getLogger("ocrpool")

FIRST_REBUILD_DELAY_S = 1.0
MAX_REBUILD_DELAY_S = 30.0
Submit = Callable[[Source, str, JobOptions | None], Awaitable[Future[OcrResult]]]
T = TypeVar("T")
_BROKEN = "the pool's engines could not start (the service's log says why); building a new pool"
"""Said when a probe, not a job, found the pool broken: the pool's own error is in the log."""


class ServiceState(str, enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    BROKEN = "broken"
    """The pool's engines cannot start: every job gets that ``EngineStartError`` while a
    new pool is built in the background."""
    DRAINING = "draining"
    STOPPED = "stopped"


class PoolLifecycle:
    def __init__(
        self,
        pool_options: dict[str, Any],
        drain_timeout_s: float,
        unhealthy_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = pool_options
        self._drain_timeout_s = drain_timeout_s
        self._unhealthy_after_s = unhealthy_after_s
        self._clock = clock
        self.state = ServiceState.STARTING
        self.pool: OcrPool | None = None
        self._fault: OcrPoolError | None = None
        self._broken_since: float | None = None
        self._rebuild_delay_s = FIRST_REBUILD_DELAY_S
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keeper: asyncio.Task[None] | None = None
        """Builds the pool: at start, and again and again while it is broken."""
        self._starting: OcrPool | None = None
        """A pool being built: stopping shuts it down at once (it holds no job)."""
        self._draining: asyncio.Task[None] | None = None
        self._drain_begun = asyncio.Event()
        """Ends a rebuild's back-off wait early."""
        self._admitting = 0
        """Requests let in while serving whose inputs are not all handed to the pool yet."""
        self._admissions_over = asyncio.Event()
        """Set while none is (or on ``stop_now``): the drain may close the pool."""
        self._admissions_over.set()
        self._closing = asyncio.Event()
        """Set once the pool takes no more inputs, not even those of requests let in
        earlier: uploads still under way then end (``unless_closing``)."""
        self._served = False
        """A pool has served with these options: a refusal of them since is the machine's
        doing (a file an option names vanished), never a configuration error."""
        self.fatal: EngineConfigError | None = None
        """Why the service must end: the first pool's engine refused its options, which no
        rebuild can change (``until_fatal``)."""
        self._fatal_found = asyncio.Event()

    def start(self) -> None:
        """Build the pool in a thread; returns at once."""
        self._loop = asyncio.get_running_loop()
        self._keeper = asyncio.create_task(self._keep(first=True))

    @contextlib.contextmanager
    def admitting(self) -> Iterator[Submit]:
        """Around reading a request and handing its inputs to the pool, with the function
        that hands one over. A request let in while serving is still served if the drain
        begins before its upload is read (the drain waits for it, within its timeout);
        one let in later gets ``PoolClosed``."""
        let_in = self.state is ServiceState.SERVING
        if let_in:
            self._admitting += 1
            self._admissions_over.clear()
        try:
            yield functools.partial(self._submit, let_in=let_in)
        finally:
            if let_in:
                self._admitting -= 1
                if not self._admitting:
                    self._admissions_over.set()

    async def _submit(
        self, source: Source, label: str, options: JobOptions | None, *, let_in: bool
    ) -> Future[OcrResult]:
        """Hand one input to the pool, or raise why it cannot take jobs now. From a thread:
        the pool counts a document's pages again (pypdf reads a 1000-page PDF's page tree
        in about half a second) and writes its bytes to a file: on the event loop, that
        would stall every request and probe."""
        if self.state is ServiceState.STARTING:
            raise NotReady("the workers are warming up; GET /readyz says when they are ready")
        if self.state is ServiceState.BROKEN and self._fault is not None:
            # A copy: raising one instance again and again would grow its traceback.
            raise copy.copy(self._fault)
        serving = self.state is ServiceState.SERVING
        draining = self.state is ServiceState.DRAINING and let_in
        if self.pool is None or self._closing.is_set() or not (serving or draining):
            raise PoolClosed("the service is stopping")
        pool = self.pool
        submitting = asyncio.ensure_future(
            asyncio.to_thread(pool.submit, source, label=label, options=options)
        )
        try:
            return await asyncio.shield(submitting)
        except OcrPoolError as error:
            self.check(error)
            raise
        except asyncio.CancelledError:  # nobody will track the job: it must not run
            submitting.add_done_callback(lambda done: _drop(pool, done))
            raise

    async def unless_closing(self, reading: Coroutine[Any, Any, T]) -> T:
        """``reading`` (a request's upload), cut short with ``PoolClosed`` once the pool
        takes no more inputs: at the drain deadline, or at once on a second signal. An
        upload left to ``--body-timeout`` would hold the stop until uvicorn's own deadline,
        then get a plain 500."""
        upload = asyncio.ensure_future(reading)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({upload, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not upload.done():
                upload.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await upload
        if upload.cancelled():
            raise PoolClosed("the service is stopping: the request's upload had not finished")
        return upload.result()

    def stop_job(self, futures: Sequence[Future[OcrResult]], kill: bool) -> bool:
        """Cancel a job's inputs the pool holds: all of them while none has started, else
        none, or with ``kill`` started ones too (their workers are stopped and replaced:
        ``OcrPool.cancel_all``); whether it did."""
        if self.pool is None:
            return all([future.cancel() for future in futures])
        return self.pool.cancel_all(futures, kill=kill)

    def check(self, error: OcrPoolError | None = None) -> None:
        """Notice a pool that broke while serving (``error``: what it raised), and begin
        to rebuild it. Called when the pool refuses a job, by the probes, and when a worker
        fails to start."""
        pool = self.pool
        if self.state is not ServiceState.SERVING or pool is None:
            return
        if pool.stats().state is not PoolState.BROKEN:
            return
        self._broke(error or EngineStartError(_BROKEN))
        self.pool = None
        self._keeper = asyncio.create_task(self._keep(first=False, broken=pool))

    def stats(self) -> PoolStats | None:
        return None if self.pool is None else self.pool.stats()

    def ready(self) -> bool:
        """Serving, the pool running (not broken), and at least one warm worker."""
        self.check()
        stats = self.stats()
        return (
            self.state is ServiceState.SERVING
            and stats is not None
            and stats.state is PoolState.RUNNING
            and stats.ready >= 1
        )

    def healthy(self) -> bool:
        """False once the pool has been broken for longer than ``unhealthy_after_s``: a
        restart of the whole process is then the remedy left to try."""
        self.check()
        if self.state is not ServiceState.BROKEN or self._broken_since is None:
            return True
        return self._clock() - self._broken_since <= self._unhealthy_after_s

    def retry_after_s(self) -> int:
        """What a refused client should wait: the current rebuild delay while broken."""
        if self.state is ServiceState.BROKEN:
            return max(1, round(self._rebuild_delay_s))
        return 1

    def begin_drain(self) -> None:
        """Refuse new jobs and stop the pool within the drain timeout; idempotent."""
        if self._draining is None:
            log.info("draining: finishing accepted jobs within %g s", self._drain_timeout_s)
            self.state = ServiceState.DRAINING
            self._drain_begun.set()
            if self._starting is not None:
                self._starting.shutdown(wait=False, cancel_pending=True)
            self._draining = asyncio.create_task(self._drain())

    def stop_now(self) -> None:
        """``begin_drain``, then fail the jobs left with ``PoolClosed`` at once (running ones
        killed) instead of at the drain deadline: a second stop signal."""
        self.begin_drain()
        self._closing.set()
        self._admissions_over.set()
        if self.pool is not None:
            log.warning("stopping now: failing the jobs left with PoolClosed")
            self.pool.shutdown(wait=False, cancel_pending=True)

    async def stop(self) -> None:
        """``begin_drain`` and wait until every worker has exited."""
        self.begin_drain()
        assert self._draining is not None
        await self._draining

    def _broke(self, error: OcrPoolError) -> None:
        log.error("the pool is broken: %s", error.message)
        self._fault = error
        if self.state is not ServiceState.BROKEN:
            self._broken_since = self._clock()
            self._rebuild_delay_s = FIRST_REBUILD_DELAY_S
        self.state = ServiceState.BROKEN

    async def until_fatal(self) -> None:
        """Return once ``fatal`` is set: the server then stops."""
        await self._fatal_found.wait()

    async def _keep(self, *, first: bool, broken: OcrPool | None = None) -> None:
        """Build a pool; while that fails, wait the back-off and build again. At start-up,
        options the engine refuses end the service instead: nothing was ever served with
        them. (Later, a file an option names may vanish and come back: rebuilt.)"""
        if broken is not None:
            await asyncio.to_thread(broken.shutdown, wait=True, cancel_pending=True)
        if not first and not await self._back_off():
            return
        while not await self._build():
            if first and isinstance(self._fault, EngineConfigError):
                self.fatal = self._fault
                self._fatal_found.set()
                return
            if not await self._back_off():
                return

    async def _back_off(self) -> bool:
        """Wait the rebuild delay, and double it; false if the service began to drain."""
        delay = self._rebuild_delay_s
        log.info("building a new pool in %g s", delay)
        try:
            await asyncio.wait_for(self._drain_begun.wait(), delay)
        except TimeoutError:
            self._rebuild_delay_s = min(MAX_REBUILD_DELAY_S, delay * 2)
            return True
        return False

    async def _build(self) -> bool:
        """Whether a pool was built (or building is over: the service is draining)."""
        if self.state not in (ServiceState.STARTING, ServiceState.BROKEN):
            return True
        try:
            pool = await asyncio.to_thread(self._warm_up)
        except Exception as error:
            if self.state not in (ServiceState.STARTING, ServiceState.BROKEN):
                return True
            self._broke(self._start_error(error))
            return False
        if self.state not in (ServiceState.STARTING, ServiceState.BROKEN):
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_pending=True)
            return True
        self.pool = pool
        self.state = ServiceState.SERVING
        self._served = True
        self._fault = self._broken_since = None
        self._rebuild_delay_s = FIRST_REBUILD_DELAY_S
        log.info("serving: %d workers warm", pool.stats().ready)
        return True

    def _start_error(self, error: Exception) -> EngineStartError:
        """What a failed build answers jobs with: a refusal of options that served before
        is an ``EngineStartError`` of the machine (the pool is rebuilt until the file is
        back), not the ``EngineConfigError`` a new pool reports at its first start."""
        if isinstance(error, EngineConfigError) and self._served:
            return EngineStartError(
                error.message,
                attempts=error.attempts,
                exitcode=error.exitcode,
                stderr_tail=error.stderr_tail,
            )
        if isinstance(error, EngineStartError):
            return error
        return EngineStartError(f"the pool could not start: {error}")

    def _warm_up(self) -> OcrPool:
        """From a thread: a new pool, once warm; ``_starting`` while it warms up."""
        pool = OcrPool(on_worker_exit=self._exited, wait_ready=False, **self._options)
        self._starting = pool
        if self.state is ServiceState.DRAINING:  # it began before ``_starting`` was set
            pool.shutdown(wait=False, cancel_pending=True)
        try:
            pool.wait_ready()
        finally:
            self._starting = None
        return pool

    def _exited(self, exit: WorkerExit) -> None:
        """From the supervisor thread: a failed start may have broken the pool."""
        if exit.cause is ExitCause.START_FAILED and self._loop is not None:
            self._loop.call_soon_threadsafe(self.check)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._drain_timeout_s
        if self._keeper is not None:
            await self._keeper  # a build under way finishes; a back-off wait ends at once
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._admissions_over.wait(), deadline - loop.time())
        self._closing.set()
        pool = self.pool
        if pool is not None:
            closing = asyncio.ensure_future(asyncio.to_thread(pool.close))
            try:
                await asyncio.wait({closing}, timeout=max(0.0, deadline - loop.time()))
            finally:
                if not closing.done():
                    log.warning("drain timeout: failing the jobs left with PoolClosed")
                    pool.shutdown(wait=False, cancel_pending=True)
            await closing
        self.state = ServiceState.STOPPED
        log.info("stopped: every worker has exited")


def _drop(pool: OcrPool, submitted: asyncio.Future[Future[OcrResult]]) -> None:
    """Stop the job a cancelled ``submit`` handed to ``pool`` after all."""
    if not submitted.cancelled() and submitted.exception() is None:
        pool.cancel(submitted.result(), kill=True)
