"""The lease book: every job from ``submit`` to its one result, and who holds it.

One book per pool, local or on Ray. It alone records which holder (a worker, or a Ray
actor holding several jobs at once) has which job, each job's attempts and kill request,
the retries, the quarantine and the futures; a holder owns only its process's life::

    QUEUED --take--> TAKEN --assign--> SENT --acked--> ACKED --settle--> DONE
      ^                |                 |               |
      +----put_back----+-----------------+               |   never started: no attempt spent
      +----charge (retries left)-------------------------+   started, its holder was lost

Futures follow ``concurrent.futures``: a job is marked running when it is taken from
the queue, so ``cancel()`` succeeds only while it waits. Futures are resolved outside
the owner's lock: the book collects the resolutions and the owner runs them after
releasing it. Time comes from the clock the owner passes, so tests drive it.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Hashable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Generic, TypeVar

from ocrpool.engines.base import JobOptions, PageSpan, Source
from ocrpool.errors import OcrPoolError
from ocrpool.results import Attempt, OcrResult, Recognition

if TYPE_CHECKING:
    from ocrpool.pool.documents import Split

log = logging.getLogger("ocrpool")

Holder = TypeVar("Holder", bound=Hashable)
Clock = Callable[[], float]
QUARANTINE_KEPT = 1000
"""Quarantined labels kept for ``stats()``: the newest ones."""

_own_thread = threading.local()


def mark_owner_thread(owner: object) -> None:
    """Called by a pool's own thread (the supervisor, the Ray dispatcher) as it starts,
    with the pool's lease book: it resolves that pool's futures, so their done-callbacks
    run on it, where a wait for another job of the pool could never end."""
    _own_thread.owner = owner


def refuse_wait(timeout: float | None = None) -> None:
    """Raise ``RuntimeError`` for a wait of ``timeout`` (a poll, ``0``, never blocks) on
    a job of the pool whose own thread this is: that thread finishes every job of the
    pool, so the job could never finish, nor, while it waited, any other."""
    if timeout is None or timeout > 0:
        raise RuntimeError(
            "a done-callback cannot wait for a job of its own pool: it runs on the pool's "
            "own thread, which every job of the pool needs to finish; submit from the "
            "callback, or wait in a thread of your own"
        )


class JobFuture(Future[OcrResult]):
    """A job's future, whose waits are refused where they would stop its pool for ever
    (``refuse_wait``); done, polled, or waited for anywhere else (another pool's thread
    included), it answers as any future."""

    def __init__(self, owner: object = None) -> None:
        super().__init__()
        self._owner = owner

    def waits_on_own_thread(self) -> bool:
        """Whether a wait for this job now would block the thread that must finish it."""
        owner = self._owner
        return (
            owner is not None and getattr(_own_thread, "owner", None) is owner and not self.done()
        )

    def result(self, timeout: float | None = None) -> OcrResult:
        if self.waits_on_own_thread():
            refuse_wait(timeout)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self.waits_on_own_thread():
            refuse_wait(timeout)
        return super().exception(timeout)


class LeaseState(enum.Enum):
    QUEUED = "queued"
    TAKEN = "taken"
    """Out of the queue, on its way to a holder (a Ray driver reading the file's bytes)."""
    SENT = "sent"
    """In a holder's hands, not started: a worker's pipe, never acknowledged."""
    ACKED = "acked"
    """Started: a worker acknowledged it, or a Ray actor was called with it."""
    DONE = "done"


@dataclass(eq=False)
class Lease:
    """One job: what it is, where it stands, what it cost so far."""

    job_id: int
    source: Source
    label: str
    future: Future[OcrResult]
    raises: bool
    """``submit`` futures raise the error; ``imap`` futures always hold an ``OcrResult``."""
    submitted_at: float
    state: LeaseState = LeaseState.QUEUED
    attempts: list[Attempt] = field(default_factory=list)
    retries_used: int = 0
    acked_at: float = 0.0
    head_at: float = 0.0
    """When it became first in its holder's hands: a job the holder never acknowledges
    is timed from here (a frozen worker cannot hold it forever)."""
    kill_requested: bool = False
    """``cancel(future, kill=True)`` asked for this running job to be stopped."""
    options: JobOptions | None = None
    """The job's own settings over the engine's (``OcrPool.submit(options=)``)."""
    split: Split | None = None
    """A path its worker counts the pages of first, to split it if it holds enough."""

    @property
    def split_from(self) -> int | None:
        """The pages from which its worker answers with the count (``Job.split_from``)."""
        return None if self.split is None else self.split.jobs.min_pages


class LeaseBook(Generic[Holder]):
    """The queue, the leases and the counters; its owner calls it under one lock."""

    def __init__(self, retries: int, clock: Clock = time.monotonic) -> None:
        self._retries = retries
        self._clock = clock
        self._queue: deque[Lease] = deque()
        self._in_hand: dict[Holder, list[Lease]] = {}
        self._open: dict[int, Lease] = {}
        """Every lease not yet DONE, by job id."""
        self._next_id = 0
        self.submitted = self.completed = self.failed = self.retried = 0
        self.quarantined: deque[str] = deque(maxlen=QUARANTINE_KEPT)
        self._resolutions: list[Callable[[], None]] = []

    # ---- the queue ------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def open(self) -> int:
        """Jobs submitted and not yet finished."""
        return len(self._open)

    def add(
        self,
        source: Source,
        label: str,
        raises: bool,
        options: JobOptions | None = None,
        split: Split | None = None,
    ) -> Lease:
        lease = self._new(source, label, raises, options, split)
        self._queue.append(lease)
        self.submitted += 1
        return lease

    def _new(
        self,
        source: Source,
        label: str,
        raises: bool,
        options: JobOptions | None,
        split: Split | None = None,
    ) -> Lease:
        self._next_id += 1
        future, now = JobFuture(self), self._clock()
        lease = Lease(
            self._next_id, source, label, future, raises, now, options=options, split=split
        )
        self._open[lease.job_id] = lease
        return lease

    def expand(
        self,
        lease: Lease,
        pages: list[tuple[PageSpan, str]],
        found: Callable[[tuple[PageSpan, ...], list[Future[OcrResult]]], None],
        attempt: Attempt,
    ) -> list[Lease]:
        """The holder counted ``lease``'s file (a ``Split`` job) and found a document to
        split: its page jobs (returned) take its place, first in the queue and in page
        order, and ``found`` learns their futures before the job's own is set (with no
        pages; the job was its page jobs, counted as them: never completed nor failed)."""
        self._drop_from_holder(lease)
        lease.attempts.append(attempt)
        children = [self._new(span, label, False, lease.options) for span, label in pages]
        self._queue.extendleft(reversed(children))
        self.submitted += len(children) - 1
        spans = tuple(span for span, _ in pages)
        futures: list[Future[OcrResult]] = [child.future for child in children]
        self._resolutions.append(lambda: found(spans, futures))
        result = OcrResult(input=lease.label, attempts=tuple(lease.attempts))
        if self._close(lease):
            self._resolutions.append(lambda: resolve(lease.future, result, raises=False))
        return children

    def take(self) -> Lease | None:
        """The next job, TAKEN and its future running; cancelled ones are dropped (their
        waiters are told at once)."""
        while self._queue:
            lease = self._queue.popleft()
            if lease.future.running() or lease.future.set_running_or_notify_cancel():
                lease.state = LeaseState.TAKEN
                return lease
            lease.state = LeaseState.DONE
            del self._open[lease.job_id]
        return None

    def withdraw(self, futures: Collection[Future[OcrResult]]) -> bool:
        """Take the jobs of ``futures`` out of the queue, all of them if none has started
        (each waits in the queue with its future pending), else none; whether it did. The
        caller then cancels the futures: nothing will set them running any more."""
        leases = [lease for lease in self._queue if lease.future in futures]
        if len(leases) != len(futures) or any(lease.future.running() for lease in leases):
            return False
        for lease in leases:
            self._queue.remove(lease)
            lease.state = LeaseState.DONE
            del self._open[lease.job_id]
        return True

    def end_queued(self, future: Future[OcrResult], error: OcrPoolError) -> bool:
        """End the job of ``future`` with ``error`` if it waits in the queue after it
        started (to be retried after its worker was lost); whether it did."""
        for lease in self._queue:
            if lease.future is future and future.running():
                self.finish(lease, error=error)
                return True
        return False

    def put_back(self, lease: Lease) -> None:
        """A job that never started: first in line again, no attempt spent."""
        self._drop_from_holder(lease)
        lease.state = LeaseState.QUEUED
        self._queue.appendleft(lease)

    # ---- holders --------------------------------------------------------------------

    def assign(self, lease: Lease, holder: Holder, *, started: bool = False) -> None:
        """``holder`` has ``lease`` now: SENT, or ACKED if handing it over starts it."""
        hand = self._in_hand.setdefault(holder, [])
        if not hand:
            lease.head_at = self._clock()
        hand.append(lease)
        lease.state = LeaseState.SENT
        if started:
            self._start(lease)

    def held(self, holder: Holder) -> tuple[Lease, ...]:
        return tuple(self._in_hand.get(holder, ()))

    def holds(self, holder: Holder) -> int:
        return len(self._in_hand.get(holder, ()))

    def head(self, holder: Holder) -> Lease | None:
        """The job ``holder`` is on, or will start next."""
        hand = self._in_hand.get(holder)
        return hand[0] if hand else None

    def started(self, holder: Holder) -> int | None:
        """The id of the job ``holder`` started (an acknowledged one), if it holds one."""
        for lease in self._in_hand.get(holder, ()):
            if lease.state is LeaseState.ACKED:
                return lease.job_id
        return None

    def acked(self, holder: Holder, job_id: int) -> Lease | None:
        """The holder started the job at the head of its hands (a worker starts in order)."""
        lease = self.head(holder)
        if lease is None or lease.job_id != job_id:
            return None
        self._start(lease)
        return lease

    def settle(self, holder: Holder, job_id: int) -> Lease | None:
        """The holder answered ``job_id``: it leaves its hands (the caller finishes it)."""
        lease = self._find(holder, job_id)
        if lease is not None:
            self._drop_from_holder(lease, holder)
        return lease

    def decline(self, holder: Holder, job_id: int) -> Lease | None:
        """The holder refused a job it never started: out of its hands, TAKEN again (the
        owner puts it back, or ends it if nothing will serve it)."""
        lease = self._find(holder, job_id)
        if lease is None or lease.state is LeaseState.ACKED:
            return None
        self._drop_from_holder(lease, holder)
        lease.state = LeaseState.TAKEN
        return lease

    def release(self, holder: Holder) -> list[Lease]:
        """The holder is gone: every lease it held, taken from it (the caller decides what
        each costs)."""
        return self._in_hand.pop(holder, [])

    def deadline(self, holder: Holder, timeout: float | None) -> float | None:
        """When the job at the head of ``holder``'s hands runs out of time: ``timeout``
        after it started, or after it became first while it was never acknowledged."""
        lease = self.head(holder)
        if not timeout or lease is None:
            return None
        return (lease.acked_at if lease.state is LeaseState.ACKED else lease.head_at) + timeout

    def request_kill(self, future: Future[OcrResult]) -> tuple[Holder, Lease] | None:
        """Mark the held job of ``future`` to be stopped; its holder and lease, or None if
        no holder has it or a stop was already asked for."""
        for holder, hand in self._in_hand.items():
            for lease in hand:
                if lease.future is future and not lease.kill_requested:
                    lease.kill_requested = True
                    return holder, lease
        return None

    def to_be_stopped(self, lease: Lease) -> bool:
        """Whether ``cancel(future, kill=True)`` asked for this job to be stopped."""
        return lease.kill_requested

    def holders(self) -> list[Holder]:
        return [holder for holder, hand in self._in_hand.items() if hand]

    # ---- ends -----------------------------------------------------------------------

    def charge(self, lease: Lease, attempt: Attempt, error: OcrPoolError, *, retry: bool) -> bool:
        """A started job lost its holder: record the attempt, then queue it again if
        ``retry`` and retries remain (True), else finish it with ``error``, quarantined
        if it was retryable."""
        self._drop_from_holder(lease)
        lease.attempts.append(attempt)
        if retry and lease.retries_used < self._retries:
            lease.retries_used += 1
            self.retried += 1
            lease.state = LeaseState.QUEUED
            self._queue.appendleft(lease)
            log.warning("retrying %s (%s) elsewhere", lease.label, type(error).__name__)
            return True
        if retry:
            self.quarantined.append(lease.label)
            tries = len(lease.attempts)
            log.error("quarantined %s after %d attempts: %s", lease.label, tries, error)
        self.finish(lease, error=error)
        return False

    def finish(
        self,
        lease: Lease,
        recognition: Recognition | None = None,
        error: OcrPoolError | None = None,
        *,
        pid: int | None = None,
        rss_mb: float | None = None,
        attempt: Attempt | None = None,
    ) -> None:
        """End a job with what its holder answered (or the error that ends it)."""
        if attempt is not None:
            lease.attempts.append(attempt)
        # built before the lease leaves the book: should building it fail, the owner's
        # failure path still finds the lease open and fails it
        result = OcrResult(
            input=lease.label,
            pages=() if recognition is None else recognition.pages,
            error=error,
            attempts=tuple(lease.attempts),
            worker_pid=pid,
            elapsed_s=self._clock() - lease.submitted_at,
            rss_mb=rss_mb,
            evaluation_mode=recognition is not None and recognition.evaluation_mode,
            exports=() if recognition is None else recognition.exports,
        )
        if self._close(lease):
            self._settle(lease, result)

    def finish_with(self, lease: Lease, result: OcrResult) -> None:
        """End a job with a result built elsewhere (a remote pool's): the book puts its
        own attempts first and counts the time since ``submit``."""
        if self._close(lease):
            attempts = (*lease.attempts, *result.attempts)
            elapsed_s = self._clock() - lease.submitted_at
            self._settle(lease, replace(result, attempts=attempts, elapsed_s=elapsed_s))

    def _close(self, lease: Lease) -> bool:
        """Take a job out of the book; whether its future is still there to resolve."""
        if lease.state is LeaseState.DONE:
            log.error("%s was finished twice; the second result is dropped", lease.label)
            return False
        self._drop_from_holder(lease)
        if lease.state is LeaseState.QUEUED:
            self._queue.remove(lease)
        lease.state = LeaseState.DONE
        self._open.pop(lease.job_id, None)
        # False: cancelled while queued, and its waiters were just told
        return lease.future.running() or lease.future.set_running_or_notify_cancel()

    def _settle(self, lease: Lease, result: OcrResult) -> None:
        if result.error is None:
            self.completed += 1
        else:
            self.failed += 1
        self._resolutions.append(lambda: resolve(lease.future, result, raises=lease.raises))

    def fail_queued(self, error: OcrPoolError) -> None:
        """End every queued job with ``error`` (shutdown, a broken pool)."""
        while self._queue:
            self.finish(self._queue[0], error=error)

    def fail_all(self, error: OcrPoolError) -> None:
        """End every open job, queued or held, with ``error`` (the owner's thread failed)."""
        for lease in list(self._open.values()):
            self.finish(lease, error=error)

    def resolutions(self) -> list[Callable[[], None]]:
        """The future resolutions collected so far, to run outside the lock."""
        done, self._resolutions = self._resolutions, []
        return done

    # ---- inside ---------------------------------------------------------------------

    def _start(self, lease: Lease) -> None:
        lease.state = LeaseState.ACKED
        lease.acked_at = self._clock()

    def _find(self, holder: Holder, job_id: int) -> Lease | None:
        for lease in self._in_hand.get(holder, ()):
            if lease.job_id == job_id:
                return lease
        return None

    def _drop_from_holder(self, lease: Lease, holder: Holder | None = None) -> None:
        """Take ``lease`` out of whichever hands hold it; the next one there becomes first."""
        holders = [holder] if holder is not None else list(self._in_hand)
        for each in holders:
            hand = self._in_hand.get(each)
            if hand and lease in hand:
                first = hand[0] is lease
                hand.remove(lease)
                if first and hand:
                    hand[0].head_at = self._clock()
                if not hand:
                    del self._in_hand[each]
                return


def resolve(future: Future[OcrResult], result: OcrResult, *, raises: bool) -> None:
    """Give ``future`` its result, or (``raises``) its error; a cancelled one keeps quiet."""
    try:
        if raises and result.error is not None:
            future.set_exception(result.error)
        else:
            future.set_result(result)
    except InvalidStateError:
        if not future.cancelled():
            log.error("the future of %s was resolved twice", result.input)


def call_all(callbacks: list[Callable[[], None]]) -> None:
    """Resolve futures and call user callbacks, outside the owner's lock (they may call
    back in, e.g. for ``stats()``); one that raises is logged, the rest still run. Even
    ``SystemExit`` from a user's callback is only logged: it ends no pool thread."""
    for callback in callbacks:
        try:
            callback()
        except BaseException:
            log.exception("ocrpool callback failed")
