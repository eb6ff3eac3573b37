"""The driver's dispatcher: one thread that owns the actors and every job's lease.

::

    callers            dispatcher thread (owns all state below)                actors
    -------            ----------------------------------------                ------
    submit() -> inbox  QUEUED until an actor has room (and, shipping bytes,
                       the bytes in flight allow it)
                       least-loaded READY actor: recognize(source) ---call--->  pool.imap
                       SENT  <----------------- Reply(result, stats) ---------
    future <- result   DONE; the actor's stats kept (the driver never polls)
                       a call fails (actor, node or connection lost):
                         the job is QUEUED again at the head (one attempt),
                         the actor RECOVERING until hello() answers:
                         READY (restarted by Ray: a new incarnation, a new pid) or DEAD
                       close: drain (or cancel), close() each pool, kill the actors

Ray's callback threads only put messages in the inbox; callers only put jobs in it and
read ``stats()`` under the lock. A call's result is taken once, so an input that ran
twice (its first actor died after starting it) is still answered once.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field, replace
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError

from ocrpool.engines.base import Source
from ocrpool.errors import InvalidInput, OcrPoolError, PoolClosed
from ocrpool.results import Attempt, OcrResult
from ocrpool.scaleout.actor import Hello, Reply
from ocrpool.scaleout.errors import ActorLost
from ocrpool.scaleout.stats import ActorInfo, ActorState, DriverCounts, aggregate
from ocrpool.stats import PoolState, PoolStats

log = logging.getLogger("ocrpool")

CLOSE_TIMEOUT_S = 120.0
"""How long the actors' pools may take to finish and stop at close before they are killed."""
_FAILED = "the pool's Ray dispatcher failed; see the log"


@dataclass(eq=False)
class Lease:
    """One job, from ``submit`` to its one result."""

    label: str
    source: Source
    future: Future[OcrResult]
    raises: bool
    submitted: float
    payload: Source | None = None
    """What is sent: the path, or (shipping bytes) the file's content once read."""
    lost: list[Attempt] = field(default_factory=list)
    """One entry per dispatch whose actor was lost."""


@dataclass(eq=False)
class Slot:
    """One actor as the dispatcher sees it."""

    name: str
    handle: Any
    capacity: int
    """Calls kept in flight to it: its local pool's ``imap`` window."""
    state: ActorState = ActorState.STARTING
    incarnation: int = 0
    pid: int | None = None
    node: str | None = None
    in_flight: int = 0
    turn: int = -1
    """When it was last sent a job: of two actors as loaded, the one that waited longer."""
    restarts: int = 0
    pids: set[int] = field(default_factory=set)
    """Every incarnation's pid: a reply from another pid means Ray restarted the actor."""

    @property
    def incarnation_key(self) -> tuple[str, int | None]:
        return self.name, self.pid


@dataclass(frozen=True)
class _Submitted:
    lease: Lease


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
class _Stop:
    cancel: bool


_Message = _Submitted | _Answered | _Greeted | _Stop


class Dispatcher:
    """Started with actors that have all said hello; ``retries``: how many more times an
    input whose actor was lost is dispatched; ``max_bytes``: the bytes in flight when
    ``ship_bytes`` (one input at a time may exceed it)."""

    def __init__(
        self,
        slots: list[Slot],
        *,
        retries: int,
        ship_bytes: bool,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = slots
        self._retries = retries
        self._ship_bytes = ship_bytes
        self._max_bytes = max_bytes
        self._clock = clock
        self._inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queue: deque[Lease] = deque()
        self._sent: set[Lease] = set()
        self._state = PoolState.RUNNING
        self._stopping = False
        self._cancel = False
        self._bytes_in_flight = 0
        self._submitted = self._completed = self._failed = 0
        self._redispatched = self._actors_lost = 0
        self._lost_inputs: list[str] = []
        self._reports: dict[tuple[str, int | None], PoolStats] = {}
        """The last stats of every actor incarnation heard from, by (name, pid)."""
        self._turns = itertools.count()
        self._thread = threading.Thread(
            target=self._run, name="ocrpool-ray-dispatcher", daemon=True
        )  # a driver that exits without closing the pool must not hang on it
        self._thread.start()

    # ---- callers' side ----------------------------------------------------------------

    def submit(self, source: Source, label: str, raises: bool) -> Future[OcrResult]:
        future: Future[OcrResult] = Future()
        with self._lock:  # a job is in the inbox before any stop that follows it
            if self._state in (PoolState.CLOSING, PoolState.CLOSED):
                raise PoolClosed(f"the pool is {self._state.value}")
            self._submitted += 1
            self._inbox.put(_Submitted(Lease(label, source, future, raises, self._clock())))
        return future

    def stop(self, cancel: bool, wait: bool) -> None:
        with self._lock:
            if self._state is PoolState.RUNNING:
                self._state = PoolState.CLOSING
            self._inbox.put(_Stop(cancel))
        if wait:
            self._thread.join()

    def stats(self) -> PoolStats:
        with self._lock:
            counts = DriverCounts(
                state=self._state,
                submitted=self._submitted,
                completed=self._completed,
                failed=self._failed,
                queued=len(self._queue),
                redispatched=self._redispatched,
                actors_lost=self._actors_lost,
                lost_inputs=tuple(self._lost_inputs),
            )
            live = [
                self._reports[slot.incarnation_key]
                for slot in self._slots
                if slot.state in (ActorState.READY, ActorState.CLOSED)
                and slot.incarnation_key in self._reports
            ]
            return aggregate(counts, self._reports.values(), live)

    def actors(self) -> tuple[ActorInfo, ...]:
        with self._lock:
            return tuple(
                ActorInfo(
                    slot.name,
                    slot.state,
                    slot.node,
                    slot.pid,
                    slot.restarts,
                    slot.in_flight,
                    self._reports.get(slot.incarnation_key),
                )
                for slot in self._slots
            )

    # ---- the dispatcher thread --------------------------------------------------------

    def _run(self) -> None:
        try:
            drained = False
            while not drained:
                message = self._inbox.get()
                with self._lock:
                    done = self._handle(message)
                    self._dispatch(done)
                    drained = self._drained()
                self._resolve_all(done)
            self._close_actors()
        except BaseException:
            log.exception("the Ray dispatcher failed; failing every job it held")
            with self._lock:
                held = [*self._queue, *self._sent]
                self._queue.clear()
                self._sent.clear()
                self._state = PoolState.BROKEN
            self._resolve_all([(lease, _failure(lease, PoolClosed(_FAILED))) for lease in held])
            raise

    def _resolve_all(self, done: list[tuple[Lease, OcrResult]]) -> None:
        """Count and hand out results, outside the lock: a caller's callback may ask for
        ``stats()``."""
        with self._lock:
            self._completed += sum(result.ok for _, result in done)
            self._failed += sum(not result.ok for _, result in done)
        for lease, result in done:
            self._resolve(lease, result)

    def _resolve(self, lease: Lease, result: OcrResult) -> None:
        """Hand ``result`` to the caller, with the dispatches lost on the way and the time
        since it was submitted to this pool."""
        result = replace(
            result,
            attempts=(*lease.lost, *result.attempts),
            elapsed_s=self._clock() - lease.submitted,
        )
        try:
            if lease.raises and result.error is not None:
                lease.future.set_exception(result.error)
            else:
                lease.future.set_result(result)
        except InvalidStateError:
            pass  # cancelled by its caller before it was sent

    def _close_actors(self) -> None:
        """Close every live actor's pool (its final stats are kept), then kill the actors:
        Ray would end them with the driver, but a driver may go on after the pool."""
        live = [slot for slot in self._slots if slot.state is ActorState.READY]
        calls = [slot.handle.close.remote(self._cancel) for slot in live]
        deadline = self._clock() + CLOSE_TIMEOUT_S
        for slot, call in zip(live, calls, strict=True):
            try:
                final = ray.get(call, timeout=max(0.0, deadline - self._clock()))
            except Exception as error:
                log.warning("actor %s did not close cleanly: %s", slot.name, _first_line(error))
                continue
            with self._lock:
                self._reports[slot.incarnation_key] = final
        for slot in self._slots:
            if slot.state is not ActorState.DEAD:
                ray.kill(slot.handle, no_restart=True)
        with self._lock:
            for slot in self._slots:
                if slot.state is not ActorState.DEAD:
                    slot.state = ActorState.CLOSED
            self._state = PoolState.CLOSED

    def _handle(self, message: _Message) -> list[tuple[Lease, OcrResult]]:
        done: list[tuple[Lease, OcrResult]] = []
        if isinstance(message, _Submitted):
            if self._cancel:
                done.append((message.lease, _failure(message.lease, PoolClosed("cancelled"))))
            elif self._state is PoolState.BROKEN:
                done.append((message.lease, _failure(message.lease, _no_actor_left())))
            else:
                self._queue.append(message.lease)
        elif isinstance(message, _Answered):
            self._answered(message, done)
        elif isinstance(message, _Greeted):
            self._greeted(message, done)
        else:
            self._stop(message.cancel, done)
        return done

    def _dispatch(self, done: list[tuple[Lease, OcrResult]]) -> None:
        """Send queued jobs to the least-loaded actors with room, oldest job first."""
        while self._queue:
            slot = self._least_loaded()
            if slot is None:
                return
            lease = self._queue[0]
            if lease.payload is None:
                try:
                    lease.payload = self._payload(lease)
                except InvalidInput as error:
                    self._queue.popleft()
                    done.append((lease, _failure(lease, error)))
                    continue
            size = len(lease.payload) if isinstance(lease.payload, bytes) else 0
            if self._bytes_in_flight and self._bytes_in_flight + size > self._max_bytes:
                return
            self._queue.popleft()
            if not lease.lost and not lease.future.set_running_or_notify_cancel():
                continue  # cancelled by its caller while queued
            self._send(lease, slot, size)

    def _least_loaded(self) -> Slot | None:
        ready = [s for s in self._slots if s.state is ActorState.READY and s.in_flight < s.capacity]
        if not ready:
            return None
        return min(ready, key=lambda s: (s.in_flight / s.capacity, s.turn))

    def _payload(self, lease: Lease) -> Source:
        """Bytes as given; a path as an absolute one (the actors run elsewhere), or with
        ``ship_bytes`` the file's content."""
        if isinstance(lease.source, bytes):
            return lease.source
        if not self._ship_bytes:
            return os.path.abspath(lease.source)
        try:
            with open(lease.source, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise InvalidInput(f"cannot read: {exc.strerror}", input=lease.source) from None

    def _send(self, lease: Lease, slot: Slot, size: int) -> None:
        self._sent.add(lease)
        slot.in_flight += 1
        self._bytes_in_flight += size
        slot.turn = next(self._turns)
        incarnation = slot.incarnation
        call: Future[Reply] = slot.handle.recognize.remote(lease.payload, lease.label).future()
        call.add_done_callback(
            lambda future: self._inbox.put(_Answered(lease, slot, incarnation, future))
        )

    def _answered(self, message: _Answered, done: list[tuple[Lease, OcrResult]]) -> None:
        lease, slot = message.lease, message.slot
        self._sent.discard(lease)
        slot.in_flight -= 1
        if isinstance(lease.payload, bytes):
            self._bytes_in_flight -= len(lease.payload)
        try:
            reply = message.call.result()
        except Exception as error:  # the call, not the input, failed: Ray raised for it
            self._lost(slot, message.incarnation, error)
            self._again(lease, slot, error, done)
            return
        self._reports[(slot.name, reply.pid)] = reply.stats
        if reply.pid not in slot.pids:  # restarted between two calls: none of them was lost
            self._actors_lost += 1
            self._restarted(slot, reply.pid, reply.node)
        done.append((lease, reply.result))

    def _again(
        self, lease: Lease, slot: Slot, error: Exception, done: list[tuple[Lease, OcrResult]]
    ) -> None:
        """Queue ``lease`` again after its call failed, or fail it past ``retries``."""
        cause = f"actor {slot.name}: {type(error).__name__}: {_first_line(error)}"
        elapsed = self._clock() - lease.submitted
        lease.lost.append(Attempt(None, type(error).__name__, elapsed, cause))
        if self._cancel:
            done.append((lease, _failure(lease, PoolClosed("cancelled"))))
        elif len(lease.lost) > self._retries:
            log.error("%s: failed, its actor was lost %d times", lease.label, len(lease.lost))
            self._lost_inputs.append(lease.label)
            failure = ActorLost(cause, attempts=len(lease.lost), cause=cause)
            done.append((lease, _failure(lease, failure)))
        else:
            log.warning("%s: dispatched again (%s)", lease.label, cause)
            self._redispatched += 1
            self._queue.appendleft(lease)

    def _lost(self, slot: Slot, incarnation: int, error: Exception) -> None:
        """The first failed call of an incarnation: count the actor lost, stop sending to
        it, and ask it for a hello, which Ray answers once it has restarted the actor (or
        fails: the actor is dead)."""
        if incarnation != slot.incarnation or slot.state is not ActorState.READY:
            return
        log.warning("actor %s (pid %s) lost: %s", slot.name, slot.pid, _first_line(error))
        self._actors_lost += 1
        slot.state = ActorState.RECOVERING
        self._greet(slot)

    def _greet(self, slot: Slot) -> None:
        slot.incarnation += 1
        incarnation = slot.incarnation
        call: Future[Hello] = slot.handle.hello.remote().future()
        call.add_done_callback(lambda future: self._inbox.put(_Greeted(slot, incarnation, future)))

    def _greeted(self, message: _Greeted, done: list[tuple[Lease, OcrResult]]) -> None:
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
            self._dead(slot, done)
            return
        if hello.pid in slot.pids:
            log.warning("actor %s (pid %s) is back: it was only unreachable", slot.name, slot.pid)
            self._actors_lost -= 1
        else:
            self._restarted(slot, hello.pid, hello.node)
        if hello.error is not None:
            log.error("actor %s: its pool cannot start: %s", slot.name, hello.error)
            ray.kill(slot.handle, no_restart=True)
            self._dead(slot, done)
            return
        slot.state = ActorState.READY

    def _restarted(self, slot: Slot, pid: int, node: str) -> None:
        log.warning("actor %s restarted by Ray: pid %s on node %s", slot.name, pid, node)
        slot.restarts += 1
        slot.pid, slot.node = pid, node
        slot.pids.add(pid)

    def _dead(self, slot: Slot, done: list[tuple[Lease, OcrResult]]) -> None:
        slot.state = ActorState.DEAD
        self._unless_any_left(done)

    def _unless_any_left(self, done: list[tuple[Lease, OcrResult]]) -> None:
        if any(s.state in (ActorState.READY, ActorState.RECOVERING) for s in self._slots):
            return
        log.error("every actor is gone: failing the %d queued inputs", len(self._queue))
        self._state = PoolState.BROKEN
        while self._queue:
            lease = self._queue.popleft()
            self._lost_inputs.append(lease.label)
            done.append((lease, _failure(lease, _no_actor_left(len(lease.lost)))))

    def _stop(self, cancel: bool, done: list[tuple[Lease, OcrResult]]) -> None:
        self._stopping = True
        if cancel and not self._cancel:
            self._cancel = True
            while self._queue:
                lease = self._queue.popleft()
                done.append((lease, _failure(lease, PoolClosed("cancelled at shutdown"))))
            for slot in self._slots:
                if slot.state is ActorState.READY and slot.in_flight:
                    slot.handle.close.remote(True)  # its running jobs come back cancelled

    def _drained(self) -> bool:
        return (
            self._stopping and not self._queue and not any(slot.in_flight for slot in self._slots)
        )


def _failure(lease: Lease, error: OcrPoolError) -> OcrResult:
    return OcrResult(input=lease.label, error=error)


def _no_actor_left(attempts: int = 0) -> ActorLost:
    cause = "every actor of the pool is gone"
    return ActorLost(cause, attempts=attempts, cause=cause)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
