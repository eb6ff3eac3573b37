"""The driver's dispatcher: one thread that owns the actors; the pool's lease book owns
every job, as in the local pool (an actor is a holder of several leases at once).

::

    callers            dispatcher thread (owns the actors)                      actors
    -------            -----------------------------------                      ------
    submit() -> book   QUEUED until an actor has room (and, shipping bytes,
      (wake)           the bytes in flight allow it; files are read outside
                       the lock, an unreadable one is that input's InvalidInput)
                       least-loaded READY actor: recognize(source) ---call--->  pool.imap
                       ACKED  <----------------- Reply(result, stats) --------
    future <- result   DONE; the actor's stats kept (the driver never polls)
                       a call fails (actor, node or connection lost):
                         the job pays an attempt and is QUEUED again (the book's
                         retries: ``actor_retries``), then fails with ActorLost;
                         the actor RECOVERING until hello() answers:
                         READY (restarted by Ray: a new incarnation, a new pid) or DEAD;
                         every actor DEAD: the pool BROKEN (EngineStartError)
                       close: drain (or cancel), close() each pool, kill the actors

Ray's callback threads only put messages in the inbox; callers add jobs to the book and
read ``stats()`` under the lock. A call's result is taken once, so an input that ran
twice (its first actor died after starting it) is still answered once. Should this
thread fail, every open job fails at once with ``PoolClosed`` and the pool is BROKEN.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError

from ocrpool.engines.base import JobOptions, PageSpan, Source
from ocrpool.errors import EngineStartError, InvalidInput, OcrPoolError, PoolClosed
from ocrpool.pool.leases import Lease, LeaseBook, call_all, mark_owner_thread
from ocrpool.pool.lifecycle import PoolLife
from ocrpool.results import Attempt, OcrResult
from ocrpool.scaleout.actor import Hello, Reply
from ocrpool.scaleout.errors import ActorLost
from ocrpool.scaleout.stats import ActorInfo, ActorState, DriverCounts, Reports, aggregate
from ocrpool.stats import PoolState, PoolStats

log = logging.getLogger("ocrpool")

CLOSE_TIMEOUT_S = 120.0
"""How long the actors' pools may take to finish and stop at close before they are killed."""
SILENCE_S = 10.0
"""An actor that holds calls and has answered nothing for this long is asked for a hello."""
FROZEN_AFTER_S = 30.0
"""A hello unanswered this long: the actor is frozen (its process stopped, its node cut
off) and is killed for Ray to restart; its calls fail and are dispatched again. Without
this, its jobs, ``close()`` and a run's Ctrl-C waited as long as it stayed frozen."""
_FAILED = "the pool's Ray dispatcher failed; see the log"


@dataclass(eq=False)
class Slot:
    """One actor as the dispatcher sees it (the book holds what it was sent)."""

    name: str
    handle: Any
    capacity: int
    """Calls kept in flight to it: its local pool's ``imap`` window."""
    state: ActorState = ActorState.STARTING
    incarnation: int = 0
    pid: int | None = None
    node: str | None = None
    turn: int = -1
    """When it was last sent a job: of two actors as loaded, the one that waited longer."""
    restarts: int = 0
    back_by: float | None = None
    """When a RECOVERING actor must have said hello: Ray may never place it again (its
    node gone and no room elsewhere), and its restart would otherwise be awaited for ever."""
    pids: set[int] = field(default_factory=set)
    """Every incarnation's pid: a reply from another pid means Ray restarted the actor."""
    heard_at: float = 0.0
    """When it last answered, or was sent a call: its silence is counted from then."""
    pinged_at: float | None = None
    """When it was asked for a hello because it was silent; ``None``: not asked."""

    @property
    def incarnation_key(self) -> tuple[str, int | None]:
        return self.name, self.pid


@dataclass(frozen=True)
class _Submitted:
    """A job was added to the book: look for an actor with room."""


@dataclass(frozen=True)
class _Answered:
    lease: Lease
    slot: Slot
    incarnation: int
    call: Future[Reply]


@dataclass(frozen=True)
class _Greeted:
    slot: Slot
    incarnation: int
    call: Future[Hello]


@dataclass(frozen=True)
class _Pinged:
    """A silent actor answered (or failed) the hello it was asked for."""

    slot: Slot
    incarnation: int
    call: Future[Hello]


@dataclass(frozen=True)
class _Stop:
    """``stop`` was called: the state already says how (CLOSING, or STOPPING to cancel)."""


_Message = _Submitted | _Answered | _Greeted | _Pinged | _Stop


class Dispatcher:
    """Started with actors that have all said hello; ``retries``: how many more times an
    input whose actor was lost is dispatched; ``max_bytes``: the bytes in flight when
    ``ship_bytes`` (one input at a time may exceed it); ``back_within_s``: how long an
    actor Ray restarts may take to say hello before it is given up (DEAD)."""

    def __init__(
        self,
        slots: list[Slot],
        *,
        retries: int,
        ship_bytes: bool,
        max_bytes: int,
        back_within_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = slots
        self._back_within_s = back_within_s
        self._ship_bytes = ship_bytes
        self._max_bytes = max_bytes
        self._clock = clock
        self._inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._book: LeaseBook[Slot] = LeaseBook(retries, clock)
        self._life = PoolLife(PoolState.RUNNING)
        self._sizes: dict[int, int] = {}
        """Bytes shipped with each call in flight, by job id."""
        self._bytes_in_flight = 0
        self._read: tuple[Lease, Source] | None = None
        """A job read and waiting for the bytes in flight to allow it (this thread's)."""
        self._actors_lost = 0
        self._reports = Reports()
        self._turns = itertools.count()
        self._thread = threading.Thread(
            target=self._run, name="ocrpool-ray-dispatcher", daemon=True
        )  # a driver that exits without closing the pool must not hang on it
        self._thread.start()

    # ---- callers' side ----------------------------------------------------------------

    def submit(
        self, source: Source, label: str, raises: bool, options: JobOptions | None
    ) -> Future[OcrResult]:
        if (forked := self._life.forked_refusal()) is not None:
            raise forked
        with self._lock:
            if not self._life.accepting:
                raise self._life.refusal()
            lease = self._book.add(source, label, raises, options)
        self._inbox.put(_Submitted())
        return lease.future

    def stop(self, cancel: bool, wait: bool) -> bool:
        """Stop dispatching; False in a forked child's copy of the pool, which stops
        nothing (the pool, and the Ray it may have started, run in its parent)."""
        if self._life.forked_refusal() is not None:
            return False
        with self._lock:
            if self._life.state is PoolState.RUNNING:
                self._life.become(PoolState.CLOSING)
            if cancel and self._life.state is PoolState.CLOSING:
                self._life.become(PoolState.STOPPING)
            self._inbox.put(_Stop())
        if wait:
            self._thread.join()
        return True

    def stats(self) -> PoolStats:
        with self._lock:
            book = self._book
            counts = DriverCounts(
                state=self._life.state,
                submitted=book.submitted,
                completed=book.completed,
                failed=book.failed,
                queued=book.queued,
                redispatched=book.retried,
                actors_lost=self._actors_lost,
                lost_inputs=tuple(book.quarantined),
            )
            live = [
                stats
                for slot in self._slots
                if slot.state in (ActorState.READY, ActorState.CLOSED)
                and (stats := self._reports.get(slot.incarnation_key)) is not None
            ]
            return aggregate(counts, self._reports.all(), live)

    def actors(self) -> tuple[ActorInfo, ...]:
        with self._lock:
            return tuple(
                ActorInfo(
                    slot.name,
                    slot.state,
                    slot.node,
                    slot.pid,
                    slot.restarts,
                    self._book.holds(slot),
                    self._reports.get(slot.incarnation_key),
                )
                for slot in self._slots
            )

    # ---- the dispatcher thread --------------------------------------------------------

    def _run(self) -> None:
        mark_owner_thread(self._book)
        try:
            drained = False
            while not drained:
                message = self._next_message()
                with self._lock:
                    if message is not None:
                        self._handle(message)
                    self._give_up_late_actors()
                    self._watch_silent_actors()
                self._dispatch()
                with self._lock:
                    drained = self._drained()
                    resolutions = self._book.resolutions()
                call_all(resolutions)
            self._close_actors()
        except BaseException:
            log.exception("the Ray dispatcher failed; failing every job it held")
            with self._lock:
                self._life.breaks(PoolClosed(_FAILED))
                self._book.fail_all(PoolClosed(_FAILED))
                resolutions = self._book.resolutions()
            call_all(resolutions)
            for slot in self._slots:  # best effort: they would otherwise live as long as Ray
                with contextlib.suppress(Exception):
                    ray.kill(slot.handle, no_restart=True)
            raise

    def _close_actors(self) -> None:
        """Close every live actor's pool (its final stats are kept), then kill the actors:
        Ray would end them with the driver, but a driver may go on after the pool."""
        live = [slot for slot in self._slots if slot.state is ActorState.READY]
        cancel = self._life.state is PoolState.STOPPING
        calls = [slot.handle.close.remote(cancel) for slot in live]
        deadline = self._clock() + CLOSE_TIMEOUT_S
        for slot, call in zip(live, calls, strict=True):
            try:
                final = ray.get(call, timeout=max(0.0, deadline - self._clock()))
            except Exception as error:
                log.warning("actor %s did not close cleanly: %s", slot.name, _first_line(error))
                continue
            with self._lock:
                self._reports.keep(slot.incarnation_key, final)
        for slot in self._slots:
            if slot.state is not ActorState.DEAD:
                ray.kill(slot.handle, no_restart=True)
        with self._lock:
            for slot in self._slots:
                if slot.state is not ActorState.DEAD:
                    slot.state = ActorState.CLOSED
            if self._life.state is not PoolState.BROKEN:
                self._life.become(PoolState.CLOSED)

    def _next_message(self) -> _Message | None:
        """The next message, or ``None`` when a RECOVERING actor's time is up first, or a
        silent one's."""
        with self._lock:
            due = [slot.back_by for slot in self._slots if slot.back_by is not None]
            due += [when for slot in self._slots if (when := self._silence_due(slot))]
        try:
            if not due:
                return self._inbox.get()
            return self._inbox.get(timeout=max(0.0, min(due) - self._clock()))
        except queue.Empty:
            return None

    def _give_up_late_actors(self) -> None:
        now = self._clock()
        for slot in self._slots:
            if slot.back_by is not None and now >= slot.back_by:
                log.error(
                    "actor %s not back %g s after it was lost: given up",
                    slot.name,
                    self._back_within_s,
                )
                with contextlib.suppress(Exception):
                    ray.kill(slot.handle, no_restart=True)
                self._dead(slot)

    def _silence_due(self, slot: Slot) -> float | None:
        """When a silent actor holding calls is to be asked for a hello, or found frozen."""
        if slot.state is not ActorState.READY or not self._book.holds(slot):
            return None
        if slot.pinged_at is None:
            return slot.heard_at + SILENCE_S
        return slot.pinged_at + FROZEN_AFTER_S

    def _watch_silent_actors(self) -> None:
        now = self._clock()
        for slot in self._slots:
            due = self._silence_due(slot)
            if due is None or now < due:
                continue
            if slot.pinged_at is None:
                slot.pinged_at = now
                self._ping(slot)
                continue
            log.error(
                "actor %s (pid %s) has answered nothing for %g s: killing it for Ray to restart",
                slot.name,
                slot.pid,
                now - slot.heard_at,
            )
            slot.pinged_at = None
            slot.heard_at = now  # its calls fail now; if they do not, ask again later
            with contextlib.suppress(Exception):
                ray.kill(slot.handle, no_restart=False)

    def _handle(self, message: _Message) -> None:
        if isinstance(message, _Answered):
            self._answered(message)
        elif isinstance(message, _Greeted):
            self._greeted(message)
        elif isinstance(message, _Pinged):
            self._pinged(message)
        elif isinstance(message, _Stop):
            self._stop()

    def _dispatch(self) -> None:
        """Send queued jobs to the least-loaded actors with room, oldest job first. With
        ``ship_bytes`` a file is read outside the lock; one that cannot be read fails as
        that input's ``InvalidInput`` and the pool goes on."""
        while True:
            if self._read is None:
                with self._lock:
                    lease = self._book.take() if self._least_loaded() is not None else None
                if lease is None:
                    return
                try:
                    self._read = lease, self._payload(lease)
                except InvalidInput as error:
                    with self._lock:
                        self._book.finish(lease, error=error)
                    continue
            lease, payload = self._read
            size = len(payload) if isinstance(payload, bytes) else 0
            with self._lock:
                slot = self._least_loaded()
                if slot is None:
                    return
                if self._bytes_in_flight and self._bytes_in_flight + size > self._max_bytes:
                    return
                self._read = None
                self._send(lease, payload, slot, size)

    def _least_loaded(self) -> Slot | None:
        book = self._book
        ready = [
            s for s in self._slots if s.state is ActorState.READY and book.holds(s) < s.capacity
        ]
        if not ready or not self._life.serving:
            return None
        return min(ready, key=lambda s: (book.holds(s) / s.capacity, s.turn))

    def _payload(self, lease: Lease) -> Source:
        """Bytes as given; a path as an absolute one (the actors run elsewhere), or with
        ``ship_bytes`` the file's content."""
        if isinstance(lease.source, (bytes, PageSpan)):
            return lease.source  # a page span is only made of a path the nodes share
        if not self._ship_bytes:
            return os.path.abspath(lease.source)
        try:
            # non-blocking: opening a FIFO would wait for a writer, in this thread
            descriptor = os.open(lease.source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with open(descriptor, "rb") as handle:
                if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                    message = f"{lease.label}: not a regular file"
                    raise InvalidInput(message, input=lease.label)
                return handle.read()
        except OSError as exc:
            message = f"{lease.label}: cannot read: {exc.strerror}"
            raise InvalidInput(message, input=lease.label) from None

    def _send(self, lease: Lease, payload: Source, slot: Slot, size: int) -> None:
        if not self._book.holds(slot):
            slot.heard_at = self._clock()  # it had nothing to say until now
        self._book.assign(lease, slot, started=True)
        self._sizes[lease.job_id] = size
        self._bytes_in_flight += size
        slot.turn = next(self._turns)
        incarnation = slot.incarnation
        try:
            call: Future[Reply] = slot.handle.recognize.remote(
                payload, lease.label, lease.options
            ).future()
        except Exception as error:  # Ray refused the call (its object store full, say)
            self._bytes_in_flight -= self._sizes.pop(lease.job_id, 0)
            self._book.settle(slot, lease.job_id)
            self._again(lease, slot, error)
            return
        call.add_done_callback(
            lambda future: self._inbox.put(_Answered(lease, slot, incarnation, future))
        )

    def _answered(self, message: _Answered) -> None:
        lease, slot = message.lease, message.slot
        self._bytes_in_flight -= self._sizes.pop(lease.job_id, 0)
        if self._book.settle(slot, lease.job_id) is None:
            return  # already ended (the pool failed it meanwhile)
        try:
            reply = message.call.result()
        except Exception as error:  # the call, not the input, failed: Ray raised for it
            self._lost(slot, message.incarnation, error)
            self._again(lease, slot, error)
            return
        self._reports.keep((slot.name, reply.pid), reply.snapshot)
        self._heard(slot)
        if reply.pid not in slot.pids:  # restarted between two calls: none of them was lost
            self._actors_lost += 1
            self._restarted(slot, reply.pid, reply.node)
        self._book.finish_with(lease, reply.result)

    def _again(self, lease: Lease, slot: Slot, error: Exception) -> None:
        """Queue ``lease`` again after its call failed, or fail it past ``retries``."""
        cause = f"actor {slot.name}: {type(error).__name__}: {_first_line(error)}"
        attempt = Attempt(None, type(error).__name__, self._clock() - lease.submitted_at, cause)
        if self._life.state is PoolState.STOPPING:
            self._book.finish(lease, error=PoolClosed("cancelled"), attempt=attempt)
            return
        failure = ActorLost(cause, attempts=len(lease.attempts) + 1, cause=cause)
        # a broken pool (every actor gone) sends nothing more: queued again, it would wait
        # for ever
        if self._book.charge(lease, attempt, failure, retry=self._life.serving):
            log.warning("%s: dispatched again (%s)", lease.label, cause)

    def _lost(self, slot: Slot, incarnation: int, error: Exception) -> None:
        """The first failed call of an incarnation: count the actor lost, stop sending to
        it, and ask it for a hello, which Ray answers once it has restarted the actor (or
        fails: the actor is dead)."""
        if incarnation != slot.incarnation or slot.state is not ActorState.READY:
            return
        log.warning("actor %s (pid %s) lost: %s", slot.name, slot.pid, _first_line(error))
        self._actors_lost += 1
        slot.state = ActorState.RECOVERING
        slot.back_by = self._clock() + self._back_within_s
        self._greet(slot)

    def _greet(self, slot: Slot) -> None:
        slot.incarnation += 1
        incarnation = slot.incarnation
        call: Future[Hello] = slot.handle.hello.remote().future()
        call.add_done_callback(lambda future: self._inbox.put(_Greeted(slot, incarnation, future)))

    def _greeted(self, message: _Greeted) -> None:
        slot = message.slot
        if message.incarnation != slot.incarnation or slot.state is not ActorState.RECOVERING:
            return
        try:
            hello = message.call.result()
        except ActorUnavailableError:
            self._greet(slot)  # still restarting: Ray answers the next hello when it is back
            return
        except Exception as error:  # ActorDiedError: out of restarts, or nowhere to go
            log.error("actor %s is gone: %s", slot.name, _first_line(error))
            self._dead(slot)
            return
        if hello.pid in slot.pids:
            log.warning("actor %s (pid %s) is back: it was only unreachable", slot.name, slot.pid)
            self._actors_lost -= 1
        else:
            self._restarted(slot, hello.pid, hello.node)
        if hello.error is not None:
            log.error("actor %s: its pool cannot start: %s", slot.name, hello.error)
            ray.kill(slot.handle, no_restart=True)
            self._dead(slot)
            return
        slot.state, slot.back_by = ActorState.READY, None
        self._heard(slot)

    def _ping(self, slot: Slot) -> None:
        incarnation = slot.incarnation
        call: Future[Hello] = slot.handle.hello.remote().future()
        call.add_done_callback(lambda future: self._inbox.put(_Pinged(slot, incarnation, future)))

    def _pinged(self, message: _Pinged) -> None:
        """A failed hello is left to the calls, which fail too (``_lost``)."""
        slot = message.slot
        if message.incarnation == slot.incarnation and message.call.exception() is None:
            self._heard(slot)

    def _heard(self, slot: Slot) -> None:
        slot.heard_at, slot.pinged_at = self._clock(), None

    def _restarted(self, slot: Slot, pid: int, node: str) -> None:
        log.warning("actor %s restarted by Ray: pid %s on node %s", slot.name, pid, node)
        slot.restarts += 1
        slot.pid, slot.node = pid, node
        slot.pids.add(pid)

    def _dead(self, slot: Slot) -> None:
        """An actor is gone for good; with none left, the pool is BROKEN, as a local pool
        whose engines cannot start: an input that waits and was never tried fails with the
        pool's ``EngineStartError`` (a batch run leaves it for the next run), one tried by
        a lost actor with ``ActorLost``."""
        slot.state, slot.back_by = ActorState.DEAD, None
        if any(s.state in (ActorState.READY, ActorState.RECOVERING) for s in self._slots):
            return
        book = self._book
        log.error("every actor is gone: failing the %d queued inputs", book.queued)
        cause = "every actor of the pool is gone"
        fault = EngineStartError(f"{cause}: Ray could not keep or restart them")
        self._life.breaks(fault)
        while (lease := book.take()) is not None:
            tries = len(lease.attempts)
            lost = ActorLost(cause, attempts=tries, cause=cause) if tries else copy.copy(fault)
            book.finish(lease, error=lost)
        self._fail_read(copy.copy(fault))

    def _stop(self) -> None:
        if self._life.state is not PoolState.STOPPING:
            return
        self._book.fail_queued(PoolClosed("cancelled at shutdown"))
        self._fail_read(PoolClosed("cancelled at shutdown"))
        for slot in self._slots:
            if slot.state is ActorState.READY and self._book.holds(slot):
                slot.handle.close.remote(True)  # its running jobs come back cancelled

    def _fail_read(self, error: OcrPoolError) -> None:
        if self._read is not None:
            self._book.finish(self._read[0], error=error)
            self._read = None

    def _drained(self) -> bool:
        return (
            not self._life.accepting
            and not self._book.queued
            and self._read is None
            and not self._book.holders()
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
