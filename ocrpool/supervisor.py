"""The supervisor: one thread that owns every worker and every job lease.

::

    callers           supervisor thread (owns all state below)          worker processes
    -------           ----------------------------------------          ----------------
    submit() -> queue -wake-> dispatch to an IDLE worker: Job ---pipe--->  recv
                              job QUEUED -> SENT                           send Ack
                              job SENT -> ACKED  <----------- Ack -------  engine.recognize
                              job done, IDLE     <-------- Outcome ------  send Outcome (+RSS)
    future <- result -------  due? (jobs >= quota, or RSS >= soft limit)
                              a warm SPARE takes its slot, then Stop --->  engine.close(); exit 0
                              every 200 ms while BUSY: RSS >= hard limit -> SIGKILL
                              deadline passed -> SIGTERM (stack dump) -> grace -> SIGKILL
                              sentinel fires -> reap, label the exit, retry or fail its job

Worker states: STARTING -> SPARE -> IDLE <-> BUSY -> RETIRING | KILLING -> (reaped).
A job SENT but never ACKED goes back to the queue as if never tried; an ACKED job on a
dead worker costs one attempt. A worker leaves only after its last result has been read.
The thread sleeps in ``multiprocessing.connection.wait`` on the pipes, the process
sentinels and a wake-up pipe, with a timeout set to the next deadline; it wakes every
``rss_sample_interval`` only while a job runs and a hard memory limit is set.
"""

from __future__ import annotations

import enum
import logging
import multiprocessing
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from ocrpool.config import PoolConfig
from ocrpool.engines.base import Source
from ocrpool.errors import (
    EngineStartError,
    JobTimeout,
    MemoryLimitExceeded,
    OcrPoolError,
    PoolClosed,
    WorkerCrashed,
)
from ocrpool.handle import WorkerHandle
from ocrpool.protocol import Ack, FromWorker, Job, Outcome, Ready, StartFailed, Stop, WorkerSpec
from ocrpool.readiness import Readiness
from ocrpool.results import Attempt, OcrResult, Page, Recognition
from ocrpool.stats import ExitCause, PoolState, PoolStats, WorkerExit, WorkerState

log = logging.getLogger("ocrpool")

_RETRYABLE = frozenset({ExitCause.CRASH, ExitCause.KILLED, ExitCause.HARD_RSS})
_PLANNED = frozenset({ExitCause.MAX_JOBS, ExitCause.SOFT_RSS, ExitCause.SHUTDOWN})
_DOCTOR_HINT = "Run `ocrpool doctor` to check the engine's runtime."


class JobState(enum.Enum):
    QUEUED = "queued"
    SENT = "sent"
    ACKED = "acked"
    DONE = "done"


@dataclass(eq=False)
class JobRecord:
    """One job's lease; owned by the supervisor thread once queued."""

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


class Supervisor:
    def __init__(
        self, config: PoolConfig, on_worker_exit: Callable[[WorkerExit], None] | None
    ) -> None:
        self._config = config
        self._on_worker_exit = on_worker_exit
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = PoolState.STARTING
        self._queue: deque[JobRecord] = deque()
        self._workers: list[WorkerHandle] = []
        self._job_ids = 0
        self._spawned = 0
        self._rng = random.Random()
        self._exits: Counter[str] = Counter()
        self._submitted = self._completed = self._failed = self._retries = 0
        self._quarantined: deque[str] = deque(maxlen=1000)
        self._start_failures = 0
        self._next_start_at = 0.0
        self._dirty = True
        """Whether anything but an acknowledgement happened since the policies last ran."""
        self._next_sample = 0.0
        self._broken: EngineStartError | None = None
        self._cancel_running = False
        self._callbacks: list[Callable[[], None]] = []
        self._log_dir = tempfile.mkdtemp(prefix="ocrpool-")
        self._readiness = Readiness()
        self._thread = threading.Thread(target=self._run, name="ocrpool-supervisor", daemon=True)
        self._thread.start()

    # ---- caller side (any thread) -------------------------------------------------

    def submit(self, source: Source, label: str, raises: bool) -> Future[OcrResult]:
        future: Future[OcrResult] = Future()
        with self._lock:
            if self._broken is not None:
                raise self._broken
            if self._state in (PoolState.CLOSING, PoolState.CLOSED):
                raise PoolClosed("the pool is closed")
            self._job_ids += 1
            self._queue.append(JobRecord(self._job_ids, source, label, future, raises))
            self._submitted += 1
            self._readiness.wake()
        return future

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until ``workers`` workers are warm; raise ``EngineStartError`` if they can't be."""
        with self._lock:
            self._changed.wait_for(lambda: self._state is not PoolState.STARTING, timeout)
            if self._broken is not None:
                raise self._broken

    def shutdown(self, cancel_pending: bool, wait_for_exit: bool) -> None:
        with self._lock:
            if self._state in (PoolState.STARTING, PoolState.RUNNING):
                self._state = PoolState.CLOSING
            if cancel_pending:
                self._cancel_running = True
                while self._queue:
                    self._finish(self._queue.popleft(), None, PoolClosed("cancelled at shutdown"))
            self._readiness.wake()
        if wait_for_exit and threading.current_thread() is not self._thread:
            self._thread.join()

    def stats(self) -> PoolStats:
        now = time.monotonic()
        with self._lock:
            return PoolStats(
                state=self._state,
                workers=tuple(w.info(now) for w in self._workers),
                exits=dict(self._exits),
                submitted=self._submitted,
                completed=self._completed,
                failed=self._failed,
                retries=self._retries,
                quarantined=tuple(self._quarantined),
                queued=len(self._queue),
            )

    # ---- the supervisor thread ----------------------------------------------------

    def _run(self) -> None:
        talking: list[WorkerHandle] = []
        exited: list[WorkerHandle] = []
        try:
            while True:
                with self._lock:  # taken once per wake-up
                    self._handle(talking, exited)
                    now = time.monotonic()
                    self._step(now)
                    finished = self._finished()
                    timeout = self._timeout(now)
                    callbacks, self._callbacks = self._callbacks, []
                _call_all(callbacks)
                if finished:
                    break
                talking, exited = self._readiness.wait(timeout)
        except BaseException:
            log.exception("ocrpool supervisor failed; stopping every worker")
            with self._lock:
                self._abort_all(PoolClosed("the pool's supervisor failed; see the log"))
            raise
        finally:
            self._run_callbacks()
            with self._lock:
                self._readiness.close()
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def _finished(self) -> bool:
        if self._workers or self._state not in (PoolState.CLOSING, PoolState.BROKEN):
            return False
        if self._state is PoolState.CLOSING and self._queue:
            return False
        if self._state is PoolState.CLOSING:
            self._state = PoolState.CLOSED
            self._changed.notify_all()
        return True

    def _handle(self, talking: list[WorkerHandle], exited: list[WorkerHandle]) -> None:
        woken = self._readiness.drain_wakes()
        timed_out = not (woken or talking or exited)
        self._dirty = self._dirty or woken or timed_out or bool(exited)
        for worker in talking:
            if worker.readable and worker not in exited:
                self._on_messages(worker, worker.receive_ready())
            if not worker.readable:
                self._readiness.forget_pipe(worker)
        for worker in exited:
            self._on_messages(worker, worker.receive())
            self._readiness.forget(worker)
            self._on_exit(worker)

    def _step(self, now: float) -> None:
        for worker in self._workers:
            worker.escalate(now)
        self._enforce_deadlines(now)
        self._sample_rss(now)
        if not self._dirty:
            return  # only acknowledgements arrived: no worker or job changed hands
        self._dirty = False
        if self._state is PoolState.RUNNING:
            self._retire_due(now)
        self._promote_spares()
        self._spawn(now)
        self._dispatch()
        if self._state in (PoolState.CLOSING, PoolState.BROKEN):
            self._wind_down(now)

    def _timeout(self, now: float) -> float | None:
        deadlines: list[float] = []
        timeout, start_timeout = self._config.job_timeout, self._config.start_timeout
        for worker in self._workers:
            if worker.kill_deadline is not None:
                deadlines.append(worker.kill_deadline)
            if worker.state is WorkerState.STARTING:
                deadlines.append(worker.started_at + start_timeout)
            job = worker.job
            if timeout and job is not None and job.state is JobState.ACKED:
                deadlines.append(job.acked_at + timeout)
        if self._sampling():
            deadlines.append(self._next_sample)
        if self._next_start_at > now:
            deadlines.append(self._next_start_at)
        return max(0.0, min(deadlines) - now) if deadlines else None

    # ---- messages and exits -------------------------------------------------------

    def _on_messages(self, worker: WorkerHandle, messages: list[FromWorker]) -> None:
        for message in messages:
            self._dirty = self._dirty or not isinstance(message, Ack)
            if isinstance(message, Ready):
                self._on_ready(worker, message)
            elif isinstance(message, StartFailed):
                worker.start_error = message.error
                log.error("worker %d failed to start: %s", worker.pid, message.traceback.strip())
            elif isinstance(message, Ack):
                job = worker.job
                if job is not None and job.job_id == message.job_id:
                    job.state = JobState.ACKED
                    job.acked_at = time.monotonic()
            elif isinstance(message, Outcome):
                self._on_outcome(worker, message)

    def _on_ready(self, worker: WorkerHandle, ready: Ready) -> None:
        if worker.state is not WorkerState.STARTING:
            return
        worker.state = WorkerState.SPARE
        worker.warm_rss_mb = worker.rss_mb = ready.rss_mb
        self._start_failures = 0
        log.info("worker %d ready in %.2fs, RSS %.0f MB", worker.pid, ready.startup_s, ready.rss_mb)

    def _on_outcome(self, worker: WorkerHandle, outcome: Outcome) -> None:
        job = worker.in_hand.popleft() if worker.in_hand else None
        worker.jobs += 1
        worker.rss_mb = outcome.rss_mb
        worker.last_job_s = outcome.elapsed_s
        if worker.state is WorkerState.BUSY and not worker.in_hand:
            worker.state = WorkerState.IDLE
        if job is None or job.job_id != outcome.job_id:
            log.error("worker %d answered job %d it was not given", worker.pid, outcome.job_id)
            return
        error = outcome.error
        outcome_name = "ok" if error is None else type(error).__name__
        job.attempts.append(
            Attempt(
                worker.pid, outcome_name, outcome.elapsed_s, "" if error is None else str(error)
            )
        )
        self._finish(job, outcome.recognition, error, worker.pid, outcome.rss_mb)
        if worker.due is None:
            worker.due = self._due_cause(worker)

    def _due_cause(self, worker: WorkerHandle) -> ExitCause | None:
        if worker.quota is not None and worker.jobs >= worker.quota:
            return ExitCause.MAX_JOBS
        soft = self._limit(self._config.max_rss_mb, worker)
        if soft is not None and worker.rss_mb is not None and worker.rss_mb >= soft:
            return ExitCause.SOFT_RSS
        return None

    def _limit(self, limit_mb: float | None, worker: WorkerHandle) -> float | None:
        if limit_mb is None or not self._config.rss_relative:
            return limit_mb
        return limit_mb + (worker.warm_rss_mb or 0.0)

    def _on_exit(self, worker: WorkerHandle) -> None:
        now = time.monotonic()
        exitcode = worker.wait()
        cause = worker.end_cause
        if cause is None:
            starting = worker.state is WorkerState.STARTING
            if exitcode == -signal.SIGKILL:
                cause = ExitCause.KILLED
            else:
                cause = ExitCause.START_FAILED if starting else ExitCause.CRASH
        tail = "" if cause in _PLANNED else worker.stderr_tail()
        worker.release()
        self._workers.remove(worker)
        if cause is ExitCause.START_FAILED:
            self._on_start_failure(worker, exitcode, tail, now)
        for job in worker.in_hand:
            self._on_lost_job(worker, job, cause, exitcode, tail, now)
        record = WorkerExit(
            worker.pid, cause, worker.rss_mb, worker.jobs, now - worker.started_at, exitcode
        )
        self._exits[cause.value] += 1
        level = logging.INFO if cause in _PLANNED else logging.WARNING
        log.log(
            level,
            "worker %d exited: %s (exit %s, %d jobs, RSS %s MB, %.1fs old)",
            worker.pid,
            cause.value,
            exitcode,
            worker.jobs,
            "?" if worker.rss_mb is None else f"{worker.rss_mb:.0f}",
            record.age_s,
        )
        callback = self._on_worker_exit
        if callback is not None:
            self._callbacks.append(lambda: callback(record))
        self._changed.notify_all()

    def _on_start_failure(
        self, worker: WorkerHandle, exitcode: int | None, tail: str, now: float
    ) -> None:
        self._start_failures += 1
        detail = worker.start_error or _describe_exit(exitcode)
        error = EngineStartError(
            f"worker {worker.pid} could not start the {self._config.engine!r} engine "
            f"({self._start_failures} of {self._config.max_start_failures} attempts): {detail}. "
            f"{_DOCTOR_HINT}",
            stderr_tail=tail,
            attempts=self._start_failures,
            exitcode=exitcode,
        )
        if self._start_failures >= self._config.max_start_failures:
            self._break(error)
        else:
            self._next_start_at = now + 0.5 * 2 ** (self._start_failures - 1)

    def _on_lost_job(
        self,
        worker: WorkerHandle,
        job: JobRecord,
        cause: ExitCause,
        exitcode: int | None,
        tail: str,
        now: float,
    ) -> None:
        if job.state is JobState.SENT:
            self._requeue(job)
            return
        error = self._lost_job_error(worker, job, cause, exitcode, tail)
        job.attempts.append(
            Attempt(worker.pid, type(error).__name__, now - job.acked_at, str(error))
        )
        if cause in _RETRYABLE:
            if job.retries_used < self._config.retries and self._serving():
                job.retries_used += 1
                self._retries += 1
                self._requeue(job)
                log.warning("retrying %s (%s) on another worker", job.label, type(error).__name__)
                return
            self._quarantined.append(job.label)
            log.error("quarantined %s after %d attempts: %s", job.label, len(job.attempts), error)
        self._finish(job, None, error, worker.pid, worker.rss_mb)

    def _serving(self) -> bool:
        """Whether a queued job will still be run (not after a cancel or a break)."""
        return self._broken is None and not self._cancel_running

    def _requeue(self, job: JobRecord) -> None:
        """Put a job back at the head of the queue, or end it if nothing will serve it."""
        if self._serving():
            job.state = JobState.QUEUED
            self._queue.appendleft(job)
        else:
            self._finish(job, None, self._broken or PoolClosed(f"{job.label}: cancelled"))

    def _lost_job_error(
        self,
        worker: WorkerHandle,
        job: JobRecord,
        cause: ExitCause,
        exitcode: int | None,
        tail: str,
    ) -> OcrPoolError:
        if cause is ExitCause.TIMEOUT:
            return JobTimeout(
                f"{job.label}: no result after {self._config.job_timeout}s; "
                f"worker {worker.pid} stopped",
                timeout=self._config.job_timeout,
                stack=tail,
            )
        if cause is ExitCause.HARD_RSS:
            limit = self._limit(self._config.effective_hard_rss_mb, worker)
            return MemoryLimitExceeded(
                f"{job.label}: worker {worker.pid} grew to {worker.rss_mb:.0f} MB, past the hard "
                f"limit of {limit:.0f} MB, and was killed",
                rss_mb=worker.rss_mb,
                limit_mb=limit,
                signal=int(signal.SIGKILL),
                exitcode=exitcode,
            )
        if cause is ExitCause.SHUTDOWN:
            return PoolClosed(f"{job.label}: stopped at shutdown")
        signum = -exitcode if exitcode is not None and exitcode < 0 else None
        return WorkerCrashed(
            f"{job.label}: worker {worker.pid} died ({_describe_exit(exitcode)})",
            exitcode=exitcode,
            signal=signum,
            stack=tail,
        )

    def _finish(
        self,
        job: JobRecord,
        recognition: Recognition | None,
        error: OcrPoolError | None,
        pid: int | None = None,
        rss_mb: float | None = None,
    ) -> None:
        job.state = JobState.DONE
        pages: tuple[Page, ...] = () if recognition is None else recognition.pages
        result = OcrResult(
            input=job.label,
            pages=pages,
            error=error,
            attempts=tuple(job.attempts),
            worker_pid=pid,
            elapsed_s=time.monotonic() - job.submitted_at,
            rss_mb=rss_mb,
            evaluation_mode=recognition is not None and recognition.evaluation_mode,
            exports=() if recognition is None else recognition.exports,
        )
        if error is None:
            self._completed += 1
        else:
            self._failed += 1
        self._callbacks.append(lambda: _resolve(job, result))

    def _break(self, error: EngineStartError) -> None:
        log.error("%s", error)
        self._broken = error
        self._state = PoolState.BROKEN
        while self._queue:
            self._finish(self._queue.popleft(), None, error)
        self._changed.notify_all()

    def _abort_all(self, error: OcrPoolError) -> None:
        while self._queue:
            self._finish(self._queue.popleft(), None, error)
        for worker in self._workers:
            worker.kill(ExitCause.SHUTDOWN)
            for job in worker.in_hand:
                self._finish(job, None, error)
            worker.wait()
            self._readiness.forget(worker)
            worker.release()
        self._workers.clear()
        self._state = PoolState.CLOSED
        self._changed.notify_all()

    def _run_callbacks(self) -> None:
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
        _call_all(callbacks)

    # ---- policies run on every step -----------------------------------------------

    def _enforce_deadlines(self, now: float) -> None:
        timeout = self._config.job_timeout
        for worker in self._workers:
            job = worker.job
            if (
                timeout
                and job is not None
                and job.state is JobState.ACKED
                and worker.state is WorkerState.BUSY
                and now - job.acked_at >= timeout
            ):
                log.warning(
                    "worker %d: %s past its %ss deadline; stopping it",
                    worker.pid,
                    job.label,
                    timeout,
                )
                worker.terminate(ExitCause.TIMEOUT, self._config.kill_grace)
            elif (
                worker.state is WorkerState.STARTING
                and now - worker.started_at >= self._config.start_timeout
            ):
                worker.start_error = f"not ready after {self._config.start_timeout}s"
                worker.kill(ExitCause.START_FAILED)

    def _sampling(self) -> bool:
        return self._config.effective_hard_rss_mb is not None and any(
            w.state is WorkerState.BUSY for w in self._workers
        )

    def _sample_rss(self, now: float) -> None:
        if not self._sampling():
            self._next_sample = now
            return
        if now < self._next_sample:
            return
        self._next_sample = now + self._config.rss_sample_interval
        for worker in self._workers:
            if worker.state is not WorkerState.BUSY:
                continue
            hard = self._limit(self._config.effective_hard_rss_mb, worker)
            rss = worker.sample_rss()
            if hard is not None and rss is not None and rss >= hard:
                log.warning(
                    "worker %d: RSS %.0f MB past the hard limit %.0f MB; killing it",
                    worker.pid,
                    rss,
                    hard,
                )
                worker.kill(ExitCause.HARD_RSS)

    def _retire_due(self, now: float) -> None:
        """Make before break: a due worker leaves only when a warm spare takes its slot."""
        spares = [w for w in self._workers if w.state is WorkerState.SPARE]
        for worker in self._workers:
            if not spares:
                return
            if worker.state is WorkerState.IDLE and worker.due is not None:
                spares.pop().state = WorkerState.IDLE
                self._retire(worker, worker.due, now)

    def _retire(self, worker: WorkerHandle, cause: ExitCause, now: float) -> None:
        worker.end_cause = cause
        worker.state = WorkerState.RETIRING
        worker.kill_deadline = now + self._config.retire_grace
        if not worker.send(Stop()):
            worker.kill(cause)

    def _promote_spares(self) -> None:
        if self._state not in (PoolState.STARTING, PoolState.RUNNING, PoolState.CLOSING):
            return
        active = sum(w.active for w in self._workers)
        for worker in self._workers:
            if active >= self._config.workers:
                break
            if worker.state is WorkerState.SPARE:
                worker.state = WorkerState.IDLE
                active += 1
        if self._state is PoolState.STARTING and active >= self._config.workers:
            self._state = PoolState.RUNNING
            self._changed.notify_all()

    def _spawn(self, now: float) -> None:
        config = self._config
        if now < self._next_start_at:
            return
        active = starting = spare = due = 0
        for worker in self._workers:
            if worker.active:
                active += 1
                due += worker.due is not None
            elif worker.state is WorkerState.STARTING:
                starting += 1
            elif worker.state is WorkerState.SPARE:
                spare += 1
        if self._state in (PoolState.STARTING, PoolState.RUNNING):
            target = config.workers + config.spares + due
        elif self._state is PoolState.CLOSING and self._queue and not self._cancel_running:
            target = config.workers
        else:
            return
        urgent = max(0, config.workers - active - spare)
        allowed = max(urgent, config.max_recycles_at_once) - starting
        for _ in range(min(target - (active + starting + spare), allowed)):
            self._start_worker()

    def _start_worker(self) -> None:
        self._spawned += 1
        spec = WorkerSpec(
            engine=self._config.engine,
            engine_options=dict(self._config.engine_options),
            parent_pid=os.getpid(),
            stderr_path=os.path.join(self._log_dir, f"worker-{self._spawned}.log"),
        )
        worker = WorkerHandle(self._ctx, spec, self._quota())
        self._workers.append(worker)
        self._readiness.watch(worker)
        log.info("started worker %d (quota %s jobs)", worker.pid, worker.quota)

    def _quota(self) -> int | None:
        """Jobs before retirement, staggered so workers do not all retire together."""
        limit = self._config.max_jobs_per_worker
        if limit is None:
            return None
        first_generation = self._spawned <= self._config.workers
        offset = (
            (self._spawned - 1) * limit // (2 * self._config.workers) if first_generation else 0
        )
        jitter = self._rng.randint(0, int(limit * self._config.recycle_jitter))
        return max(1, limit - offset - jitter)

    def _dispatch(self) -> None:
        """Give each idle worker a job, then prefetch one more to each busy worker whose
        last job was short (under ``prefetch_below_s``).

        Prefetching takes the supervisor's round trip out of short jobs; long jobs skip
        it, so a job never waits behind a long one while another worker is free. A
        prefetched job waits in the worker's pipe, SENT but not ACKED: if the worker
        dies, it goes back to the queue unblamed. None is sent past a worker's quota.
        """
        if self._state is PoolState.BROKEN:
            return
        for depth in (0, 1):
            takers = [w for w in self._workers if self._takes(w, depth)]
            takers.sort(key=lambda w: w.due is not None)
            for worker in takers:
                job = self._next_job()
                if job is None:
                    return
                job.state = JobState.SENT
                worker.in_hand.append(job)
                worker.state = WorkerState.BUSY
                if not worker.send(Job(job.job_id, job.source)):
                    worker.in_hand.pop()
                    self._requeue(job)

    def _takes(self, worker: WorkerHandle, depth: int) -> bool:
        if not (worker.active and worker.writable and len(worker.in_hand) == depth):
            return False
        if depth == 0:
            return True
        quota, last = worker.quota, worker.last_job_s
        return (
            worker.due is None
            and (quota is None or worker.jobs + depth < quota)
            and last is not None
            and last < self._config.prefetch_below_s
        )

    def _next_job(self) -> JobRecord | None:
        while self._queue:
            job = self._queue.popleft()
            if not job.future.cancelled():
                return job
        return None

    def _wind_down(self, now: float) -> None:
        for worker in self._workers:
            if self._cancel_running and worker.state is WorkerState.BUSY:
                worker.terminate(ExitCause.SHUTDOWN, self._config.kill_grace)
            elif self._queue and not self._cancel_running:
                continue
            elif worker.state is WorkerState.STARTING:
                worker.kill(ExitCause.SHUTDOWN)
            elif worker.state in (WorkerState.IDLE, WorkerState.SPARE):
                self._retire(worker, worker.due or ExitCause.SHUTDOWN, now)


def _call_all(callbacks: list[Callable[[], None]]) -> None:
    """Resolve futures and call user callbacks outside the lock (they may call back in)."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("ocrpool callback failed")


def _resolve(job: JobRecord, result: OcrResult) -> None:
    try:
        if job.raises and result.error is not None:
            job.future.set_exception(result.error)
        else:
            job.future.set_result(result)
    except InvalidStateError:
        pass  # cancelled by its caller meanwhile


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
