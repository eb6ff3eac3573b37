"""``OcrPool``: an Executor-like front for the recycling supervisor."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from ocrpool.engines.base import JobOptions, Source
from ocrpool.exports import ExportFormat
from ocrpool.pool.config import PoolConfig
from ocrpool.pool.documents import DocumentFuture, PageJobs, Split
from ocrpool.pool.front import PoolFront
from ocrpool.pool.supervisor import Supervisor
from ocrpool.results import OcrResult
from ocrpool.stats import PoolStats, WorkerExit


class OcrPool(PoolFront):
    """A pool of worker processes, each owning one OCR engine, recycled before they leak.

    Used like ``concurrent.futures.ProcessPoolExecutor``: ``submit`` returns a
    ``Future``, ``map``/``imap`` stream results, ``shutdown`` (or ``with``) ends it.
    Settings are ``PoolConfig``'s fields, given as keywords (``workers`` may also be the
    first argument) or as a ``config`` that keywords override. The constructor returns
    once ``workers`` engines are warm, or raises ``EngineStartError`` after
    ``max_start_failures`` failed starts in a row; with ``wait_ready=False`` it returns at
    once, and ``wait_ready()`` waits (a caller can then ``shutdown`` a pool still starting,
    as a service stopping does). ``on_worker_exit`` is called (from
    the supervisor thread) with a ``WorkerExit`` for every worker that ends.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        config: PoolConfig | None = None,
        on_worker_exit: Callable[[WorkerExit], None] | None = None,
        wait_ready: bool = True,
        **overrides: Any,
    ) -> None:
        super().__init__()
        if isinstance(workers, PoolConfig):
            raise TypeError("a PoolConfig is passed as a keyword: OcrPool(config=...)")
        if workers is not None:
            overrides["workers"] = workers
        if "engine_options" in overrides:
            overrides["engine_options"] = dict(overrides["engine_options"] or {})
        self.config = dataclasses.replace(config or PoolConfig(), **overrides)
        self._split, self._exports = self.config.page_jobs, self.config.merged_exports
        self._supervisor = Supervisor(self.config, on_worker_exit)
        # a pool dropped unclosed closes, as ProcessPoolExecutor does, rather than keep its
        # workers as long as the process lives; at exit the supervisor stops them itself
        weakref.finalize(self, self._supervisor.abandon).atexit = False
        if wait_ready:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Return once ``workers`` engines are warm or the pool is shut down; raise
        ``EngineStartError`` (the pool stopped) if they cannot start."""
        try:
            self._supervisor.wait_ready()
        except BaseException:
            self._supervisor.shutdown(cancel_pending=True, wait_for_exit=True)
            raise

    # ---- Executor-like API --------------------------------------------------------

    def _submit(
        self, source: Source, label: str, raises: bool, options: JobOptions | None
    ) -> Future[OcrResult]:
        return self._supervisor.submit(source, label, raises, options)

    def _page_jobs(self, source: Source) -> PageJobs | None:
        return self._split

    _workers_count_pages = True

    def _submit_counting(
        self, path: str, label: str, options: JobOptions | None, split: Split
    ) -> Future[OcrResult]:
        return self._supervisor.submit(path, label, False, options, split)

    def _export_formats(self) -> tuple[ExportFormat, ...]:
        return self._exports

    def _document_folder(self) -> str:
        return self._supervisor.folder

    @property
    def window(self) -> int:
        return self.config.window

    def cancel(self, future: Future[OcrResult], *, kill: bool = False) -> bool:
        """Cancel a job. A queued job is cancelled as ``future.cancel()`` would; with
        ``kill``, a started one is stopped too (its worker is ended and replaced, counted
        as ``cancelled``; or, waiting to be retried after its worker was lost, it is not
        run again) and its future ends with ``JobCancelled``. A path is one job until its
        worker has counted its pages. A split document's future is cancelled while it
        waits (a path: to be counted; bytes: while none of its pages has started); with
        ``kill``, while any page is left: its queued pages are dropped and its running
        ones stopped the same way. Whether it was."""
        _require_future(future)
        if not isinstance(future, DocumentFuture):
            return self._supervisor.cancel(future, kill)
        if not kill:
            return self.cancel_all([future])
        return future.cancel_jobs(lambda job: self._supervisor.cancel(job, kill))

    def cancel_all(self, futures: Iterable[Future[OcrResult]], *, kill: bool = False) -> bool:
        """Cancel several jobs as one (a batch): all of them while none has started, else
        none, so no job is left half cancelled; with ``kill``, each as ``cancel`` does.
        Whether every one was."""
        futures = list(futures)  # read more than once: an iterator would be empty by then
        for future in futures:
            _require_future(future)
        if kill:
            return all([self.cancel(future, kill=True) for future in futures])
        left = [future for future in futures if not future.cancelled()]
        jobs = {
            job
            for future in left
            for job in (future.jobs() if isinstance(future, DocumentFuture) else (future,))
        }
        if not self._supervisor.withdraw(jobs):
            return False
        for future in left:
            future.cancel()  # out of the queue: nothing sets it running now
        return True

    # ---- life cycle ---------------------------------------------------------------

    def _stats(self) -> PoolStats:
        return self._supervisor.stats()

    def close(self) -> None:
        """Finish every queued job, retire the workers, and wait for them to exit."""
        self._supervisor.shutdown(cancel_pending=False, wait_for_exit=True)

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Stop the pool. ``cancel_pending`` fails queued jobs with ``PoolClosed`` and stops
        running ones at once (their workers get SIGTERM, then SIGKILL)."""
        self._supervisor.shutdown(cancel_pending=cancel_pending, wait_for_exit=wait)


def _require_future(future: object) -> None:
    """``TypeError`` for what is no job's future (a path, say), told as such rather than as
    an ``AttributeError`` from the supervisor."""
    if not isinstance(future, Future):
        raise TypeError(f"expected a future of this pool, not {type(future).__name__}")
