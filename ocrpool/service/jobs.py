"""The job table: every job the service accepted, until its result is fetched or expires.

It belongs to the event loop's thread; nothing else touches it. A job is one request's
inputs (one, or a batch) and their pool futures; it is PENDING while the pool has any,
then FINISHED (its reply kept) or CANCELLED. Finished jobs are kept in the
order they finished and dropped oldest first: past ``ttl_s``, or while more than
``max_results`` replies or ``max_bytes`` of them are kept (the newest is always kept, so a
client that was just told "finished" can fetch it). Pending jobs are bounded by the
service's queue slots, not here.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from ocrpool.errors import JobCancelled
from ocrpool.pool.documents import DocumentFuture
from ocrpool.results import OcrResult
from ocrpool.service.errors import JobNotFound
from ocrpool.service.replies import Reply

Finish = Callable[[Sequence[asyncio.Future[OcrResult]]], Reply]
"""Turns a job's settled futures (each a result, an error or cancelled) into its reply."""

Stop = Callable[[Sequence[Future[OcrResult]], bool], bool]
"""Cancels pool futures, all of them while none has started, else none (``kill``:
started ones too, ``OcrPool.cancel_all``); whether it did."""


class JobState(str, enum.Enum):
    PENDING = "pending"
    """Queued in the pool or running on a worker."""
    FINISHED = "finished"
    """Its reply (result or error) is kept until fetched and deleted, or expired."""
    CANCELLED = "cancelled"


class Job:
    def __init__(self, job_id: str, futures: Sequence[Future[OcrResult]], stop: Stop) -> None:
        self.id = job_id
        self.state = JobState.PENDING
        self.reply: Reply | None = None
        self.finished_at = 0.0
        self.settled = asyncio.Event()
        self._futures: Sequence[Future[OcrResult]] = futures
        """The pool's futures, dropped once settled: the reply's bytes are what is kept."""
        self._stop = stop
        self.cancelling = False
        """A cancel was asked and granted: the job is settling."""

    def cancel(self, kill: bool = False) -> bool:
        """Cancel the whole job; whether that was granted (the job then settles): with
        ``kill`` always, every input left stopped; without, only while no input has
        started or finished, so a refusal (409) leaves the job as it was, never half
        cancelled."""
        if self.state is not JobState.PENDING:
            return False
        if kill:
            self._stop([future for future in self._futures if not future.done()], True)
        elif not self._stop(self._futures, False):
            return False
        self.cancelling = True
        return True

    def cancel_queued(self) -> None:
        """Cancel the inputs still queued, and a document's queued pages; running ones
        finish (nobody waits for them)."""
        for future in self._futures:
            for job in future.jobs() if isinstance(future, DocumentFuture) else (future,):
                job.cancel()

    def settle(self, state: JobState, reply: Reply, at: float) -> None:
        self.state, self.reply, self.finished_at = state, reply, at
        self._futures = ()
        self.settled.set()

    async def wait(self, timeout: float | None, abandon: asyncio.Future[Any] | None) -> bool:
        """Wait up to ``timeout`` seconds (``None``: no limit) for the job to settle, or for
        ``abandon`` (a client gone) to fire; whether it settled."""
        if self.settled.is_set() or timeout == 0:
            return self.settled.is_set()
        settled = asyncio.ensure_future(self.settled.wait())
        watched: set[asyncio.Future[Any]] = {settled}
        if abandon is not None:
            watched.add(abandon)
        await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        settled.cancel()
        return self.settled.is_set()


class JobTable:
    def __init__(
        self,
        *,
        ttl_s: float,
        max_results: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_results = max_results
        self._max_bytes = max_bytes
        self._clock = clock
        self._pending: dict[str, Job] = {}
        self._finished: OrderedDict[str, Job] = OrderedDict()
        self._bytes = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def stored(self) -> int:
        """Finished jobs whose replies are kept."""
        return len(self._finished)

    @property
    def stored_bytes(self) -> int:
        return self._bytes

    def add(self, futures: Sequence[Future[OcrResult]], finish: Finish, stop: Stop) -> Job:
        """Track the pool's ``futures``; ``finish`` makes the reply once all have settled."""
        job = Job(secrets.token_urlsafe(16), futures, stop)
        self._pending[job.id] = job
        waited = [asyncio.wrap_future(future) for future in futures]
        asyncio.gather(*waited, return_exceptions=True).add_done_callback(
            lambda _: self._settle(job, waited, finish)
        )
        return job

    def get(self, job_id: str) -> Job:
        self._expire()
        job = self._pending.get(job_id) or self._finished.get(job_id)
        if job is None:
            raise JobNotFound(
                "no such job: never created, deleted, or its result expired", id=job_id
            )
        return job

    def remove(self, job: Job) -> None:
        """Forget ``job``: a pending one's queued inputs are cancelled, and its result, if
        it comes, is dropped."""
        if self._pending.pop(job.id, None) is not None:
            job.cancel_queued()
        elif self._finished.pop(job.id, None) is not None and job.reply is not None:
            self._bytes -= len(job.reply.body)

    def _settle(self, job: Job, done: Sequence[asyncio.Future[OcrResult]], finish: Finish) -> None:
        reply = finish(done)
        state = JobState.CANCELLED if all(map(cancelled, done)) else JobState.FINISHED
        job.settle(state, reply, self._clock())
        if self._pending.pop(job.id, None) is None:
            return  # removed while pending: nobody will ask for it
        self._finished[job.id] = job
        self._bytes += len(reply.body)
        self._expire()
        while len(self._finished) > 1 and (
            len(self._finished) > self._max_results or self._bytes > self._max_bytes
        ):
            self._drop_oldest()

    def _expire(self) -> None:
        deadline = self._clock() - self._ttl_s
        while self._finished and next(iter(self._finished.values())).finished_at < deadline:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, job = self._finished.popitem(last=False)
        if job.reply is not None:
            self._bytes -= len(job.reply.body)


def cancelled(done: asyncio.Future[OcrResult]) -> bool:
    """Cancelled while queued, or stopped while running (``JobCancelled``)."""
    return done.cancelled() or isinstance(done.exception(), JobCancelled)
