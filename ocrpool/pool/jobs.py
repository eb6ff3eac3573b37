"""Job leases: every job from ``submit`` to its result, owned by one ``JobBook``.

A job is QUEUED, then SENT to a worker, ACKED once the worker's engine has it, and
DONE. A SENT job that comes back (its worker died before reading it, or declined it)
returns to the head of the queue unblamed; an ACKED job whose worker died costs one
attempt. Futures follow ``concurrent.futures``: a job is marked running when it leaves
the queue, so ``cancel()`` succeeds only while it waits and ``wait``/``as_completed``
learn of a cancel at once. Futures are resolved outside the supervisor's lock: the
book collects the resolutions and the supervisor runs them after releasing it.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from ocrpool.engines.base import Source
from ocrpool.errors import OcrPoolError
from ocrpool.results import Attempt, OcrResult, Recognition

log = logging.getLogger("ocrpool")


class JobState(enum.Enum):
    QUEUED = "queued"
    SENT = "sent"
    ACKED = "acked"
    DONE = "done"


@dataclass(eq=False)
class JobRecord:
    """One job's lease."""

    job_id: int
    source: Source
    label: str
    future: Future[OcrResult]
    raises: bool
    """``submit`` futures raise the error; ``imap`` futures always hold an ``OcrResult``."""
    state: JobState = JobState.QUEUED
    attempts: list[Attempt] = field(default_factory=list)
    retries_used: int = 0
    submitted_at: float = field(default_factory=time.monotonic)
    acked_at: float = 0.0
    kill_requested: bool = False
    """``OcrPool.cancel(future, kill=True)`` asked for this running job to be stopped."""


class JobBook:
    """The queue, the leases and the counters; only the supervisor (under its lock)
    calls it."""

    def __init__(self, retries: int) -> None:
        self._retries = retries
        self._queue: deque[JobRecord] = deque()
        self._next_id = 0
        self.submitted = self.completed = self.failed = self.retried = 0
        self.quarantined: deque[str] = deque(maxlen=1000)
        self._resolutions: list[Callable[[], None]] = []

    @property
    def queued(self) -> int:
        return len(self._queue)

    def add(self, source: Source, label: str, raises: bool) -> JobRecord:
        self._next_id += 1
        job = JobRecord(self._next_id, source, label, Future(), raises)
        self._queue.append(job)
        self.submitted += 1
        return job

    def take(self) -> JobRecord | None:
        """The next job for a worker, marked SENT and its future running; cancelled
        futures are dropped (their waiters are told)."""
        while self._queue:
            job = self._queue.popleft()
            if job.future.running() or job.future.set_running_or_notify_cancel():
                job.state = JobState.SENT
                return job
        return None

    def put_back(self, job: JobRecord) -> None:
        """A SENT job that was never started: first in line again, no attempt spent."""
        job.state = JobState.QUEUED
        self._queue.appendleft(job)

    def acked(self, job: JobRecord) -> None:
        job.state = JobState.ACKED
        job.acked_at = time.monotonic()

    def retry(self, job: JobRecord, error: OcrPoolError) -> bool:
        """Whether the job, lost with its worker, gets another attempt (then it is queued)."""
        if job.retries_used >= self._retries:
            self.quarantined.append(job.label)
            log.error("quarantined %s after %d attempts: %s", job.label, len(job.attempts), error)
            return False
        job.retries_used += 1
        self.retried += 1
        self.put_back(job)
        log.warning("retrying %s (%s) on another worker", job.label, type(error).__name__)
        return True

    def finish(
        self,
        job: JobRecord,
        recognition: Recognition | None,
        error: OcrPoolError | None,
        pid: int | None = None,
        rss_mb: float | None = None,
    ) -> None:
        job.state = JobState.DONE
        if not (job.future.running() or job.future.set_running_or_notify_cancel()):
            return  # cancelled while queued: its waiters were just told
        result = OcrResult(
            input=job.label,
            pages=() if recognition is None else recognition.pages,
            error=error,
            attempts=tuple(job.attempts),
            worker_pid=pid,
            elapsed_s=time.monotonic() - job.submitted_at,
            rss_mb=rss_mb,
            evaluation_mode=recognition is not None and recognition.evaluation_mode,
        )
        if error is None:
            self.completed += 1
        else:
            self.failed += 1
        self._resolutions.append(lambda: _resolve(job, result))

    def fail_queued(self, error: OcrPoolError) -> None:
        """End every queued job with ``error`` (shutdown, a broken pool)."""
        while self._queue:
            self.finish(self._queue.popleft(), None, error)

    def resolutions(self) -> list[Callable[[], None]]:
        """The future resolutions collected so far, to run outside the lock."""
        done, self._resolutions = self._resolutions, []
        return done


def _resolve(job: JobRecord, result: OcrResult) -> None:
    try:
        if job.raises and result.error is not None:
            job.future.set_exception(result.error)
        else:
            job.future.set_result(result)
    except InvalidStateError:
        log.error("the future of %s was resolved twice", job.label)
