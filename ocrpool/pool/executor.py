"""``OcrPool``: an Executor-like front for the recycling supervisor."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import queue
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from ocrpool.engines.base import Source
from ocrpool.errors import OcrPoolError
from ocrpool.pool.config import PoolConfig
from ocrpool.pool.supervisor import Supervisor
from ocrpool.results import OcrResult
from ocrpool.stats import PoolStats, WorkerExit

PathOrSource = Source | os.PathLike[str]


class OcrPool:
    """A pool of worker processes, each owning one OCR engine, recycled before they leak.

    Used like ``concurrent.futures.ProcessPoolExecutor``: ``submit`` returns a
    ``Future``, ``map``/``imap`` stream results, ``shutdown`` (or ``with``) ends it.
    Settings are ``PoolConfig``'s fields, given as keywords (``workers`` may also be the
    first argument) or as a ``config`` that keywords override. The constructor returns
    once ``workers`` engines are warm, or raises ``EngineStartError`` after
    ``max_start_failures`` failed starts in a row. ``on_worker_exit`` is called (from
    the supervisor thread) with a ``WorkerExit`` for every worker that ends.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        config: PoolConfig | None = None,
        on_worker_exit: Callable[[WorkerExit], None] | None = None,
        **overrides: Any,
    ) -> None:
        if workers is not None:
            overrides["workers"] = workers
        if "engine_options" in overrides:
            overrides["engine_options"] = dict(overrides["engine_options"] or {})
        self.config = dataclasses.replace(config or PoolConfig(), **overrides)
        self._supervisor = Supervisor(self.config, on_worker_exit)
        try:
            self._supervisor.wait_ready(self.config.start_timeout * self.config.max_start_failures)
        except BaseException:
            self._supervisor.shutdown(cancel_pending=True, wait_for_exit=True)
            raise

    # ---- Executor-like API --------------------------------------------------------

    def submit(self, source: PathOrSource, *, label: str | None = None) -> Future[OcrResult]:
        """Queue one input; the future gives its ``OcrResult`` or raises its typed error."""
        data, name = _normalise(source, label)
        return self._supervisor.submit(data, name, raises=True)

    def cancel(self, future: Future[OcrResult], *, kill: bool = False) -> bool:
        """Cancel a job. A queued job is cancelled as ``future.cancel()`` would; with
        ``kill``, a running one is stopped too (its worker is ended and replaced, counted
        as ``cancelled``) and its future ends with ``JobCancelled``. Whether it was."""
        return self._supervisor.cancel(future, kill)

    def recognize(self, source: PathOrSource, *, label: str | None = None) -> OcrResult:
        """OCR one input and wait for it; raises the job's typed error."""
        return self.submit(source, label=label).result()

    def imap(self, sources: Iterable[PathOrSource], *, ordered: bool = True) -> Iterator[OcrResult]:
        """OCR every input, keeping at most ``max_in_flight`` submitted at once.

        Never raises for one input: failures come back as results with ``ok`` false.
        ``sources`` is consumed lazily, so a generator of millions keeps memory flat.
        """
        window = self.config.window
        if ordered:
            pending: deque[Future[OcrResult]] = deque()
            for source in sources:
                pending.append(self._submit_quiet(source))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
            return
        done: queue.SimpleQueue[OcrResult] = queue.SimpleQueue()
        in_flight = 0
        for source in sources:
            self._submit_quiet(source).add_done_callback(lambda f: done.put(f.result()))
            in_flight += 1
            if in_flight >= window:
                yield done.get()
                in_flight -= 1
        for _ in range(in_flight):
            yield done.get()

    def map(self, sources: Iterable[PathOrSource]) -> Iterator[OcrResult]:
        """``imap`` in input order, as ``Executor.map`` users expect."""
        return self.imap(sources, ordered=True)

    # ---- asyncio ------------------------------------------------------------------

    async def arecognize(self, source: PathOrSource, *, label: str | None = None) -> OcrResult:
        """``recognize`` for asyncio: awaits without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(source, label=label))

    async def aimap(
        self, sources: Iterable[PathOrSource], *, ordered: bool = False
    ) -> AsyncIterator[OcrResult]:
        """``imap`` for asyncio, with the same window and the same never-raise rule."""
        window = self.config.window
        pending: deque[asyncio.Future[OcrResult]] = deque()
        for source in sources:
            pending.append(asyncio.wrap_future(self._submit_quiet(source)))
            if len(pending) >= window:
                yield await _next_done(pending, ordered)
        while pending:
            yield await _next_done(pending, ordered)

    # ---- life cycle ---------------------------------------------------------------

    def stats(self) -> PoolStats:
        return self._supervisor.stats()

    def close(self) -> None:
        """Finish every queued job, retire the workers, and wait for them to exit."""
        self._supervisor.shutdown(cancel_pending=False, wait_for_exit=True)

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Stop the pool. ``cancel_pending`` fails queued jobs with ``PoolClosed`` and stops
        running ones at once (their workers get SIGTERM, then SIGKILL)."""
        self._supervisor.shutdown(cancel_pending=cancel_pending, wait_for_exit=wait)

    def __enter__(self) -> OcrPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.shutdown(cancel_pending=exc_type is not None)

    def _submit_quiet(self, source: PathOrSource) -> Future[OcrResult]:
        """A future that always holds an ``OcrResult``, even when submitting fails."""
        data, name = _normalise(source, None)
        try:
            return self._supervisor.submit(data, name, raises=False)
        except OcrPoolError as error:
            future: Future[OcrResult] = Future()
            future.set_result(OcrResult(input=name, error=error))
            return future


async def _next_done(pending: deque[asyncio.Future[OcrResult]], ordered: bool) -> OcrResult:
    if not ordered:
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for future in pending:
            if future.done():
                pending.remove(future)
                return future.result()
    return await pending.popleft()


def _normalise(source: PathOrSource, label: str | None) -> tuple[Source, str]:
    if isinstance(source, bytes):
        return source, label or f"<{len(source)} bytes>"
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        return path, label or path
    raise TypeError(f"expected a path or bytes, not {type(source).__name__}")
