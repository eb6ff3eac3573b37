"""The supervisor: one thread that runs the pool, reading like its diagram.

::

    callers            supervisor thread                                   workers
    -------            -----------------                                   -------
    submit() -> JobBook.add --wake--+
                                    v
              +----> wait (epoll: pipes, sentinels, wake-up pipe; timeout = next deadline)
              |          |
              |      handle messages   Ready -> SPARE    Ack -> job ACKED    Declined -> requeue
              |          |             Outcome -> job DONE, future resolved (quota/RSS -> due)
              |      handle exits      reap, classify, retry or fail its job, count the cause
              |          |
              |      reconcile         deadlines (SIGTERM, grace, SIGKILL), hard RSS (SIGKILL),
              |          |             retire due workers, promote spares, start workers,
              +----------+             dispatch Job ---pipe---> worker (at most its quota)

Pool states: STARTING -> RUNNING -> CLOSING | STOPPING -> CLOSED, or BROKEN when workers
cannot start. Who owns what: ``JobBook`` (jobs.py) every job and future; ``WorkerHandle``
(handle.py) one worker's life cycle and its only way to end; ``exits.py`` why a worker
ended and what its job gets; this module the pool's state and the policies. Everything
here runs under one lock taken once per wake-up; futures are resolved and user callbacks
called after it is released.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future

from ocrpool.engines.base import Source
from ocrpool.errors import OcrPoolError, PoolClosed
from ocrpool.pool import policies
from ocrpool.pool.config import PoolConfig
from ocrpool.pool.exits import (
    PLANNED,
    RETRYABLE,
    classify_exit,
    lost_job_error,
    start_failure_error,
)
from ocrpool.pool.handle import Ask, WorkerHandle, process_context
from ocrpool.pool.jobs import JobBook, JobRecord, JobState
from ocrpool.pool.protocol import Ack, Declined, FromWorker, Outcome, Ready, StartFailed, WorkerSpec
from ocrpool.pool.readiness import Readiness
from ocrpool.pool.restarts import UNPLANNED, RestartIntensity
from ocrpool.results import Attempt, OcrResult
from ocrpool.stats import ExitCause, PoolState, PoolStats, WorkerExit, WorkerState

log = logging.getLogger("ocrpool")

_SERVING = frozenset({PoolState.STARTING, PoolState.RUNNING, PoolState.CLOSING})
"""States in which a queued job will still be run."""


class Supervisor:
    def __init__(
        self, config: PoolConfig, on_worker_exit: Callable[[WorkerExit], None] | None
    ) -> None:
        self._config = config
        self._on_worker_exit = on_worker_exit
        self._context = process_context(config.start_method)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = PoolState.STARTING
        self._fault: OcrPoolError | None = None
        """Why the pool is BROKEN."""
        self._jobs = JobBook(config.retries)
        self._workers: list[WorkerHandle] = []
        self._spawned = 0
        self._rng = random.Random()
        self._exits: Counter[str] = Counter()
        self._start_failures = 0
        self._restarts = RestartIntensity(config.max_restarts, config.restart_window)
        self._next_start_at = 0.0
        self._next_sample = 0.0
        self._dirty = True
        """Whether anything but an acknowledgement happened since the policies last ran."""
        self._callbacks: list[Callable[[], None]] = []
        self._log_dir = tempfile.mkdtemp(prefix="ocrpool-")
        self._readiness = Readiness()
        self._thread = threading.Thread(target=self._run, name="ocrpool-supervisor", daemon=True)
        self._thread.start()

    # ---- caller side (any thread) -------------------------------------------------

    def submit(self, source: Source, label: str, raises: bool) -> Future[OcrResult]:
        with self._lock:
            if self._fault is not None:
                raise copy.copy(self._fault)  # the stored one would grow a traceback per raise
            if self._state not in (PoolState.STARTING, PoolState.RUNNING):
                raise PoolClosed("the pool is closed")
            job = self._jobs.add(source, label, raises)
            self._readiness.wake()
        return job.future

    def cancel(self, future: Future[OcrResult], kill: bool) -> bool:
        """Cancel a queued job; with ``kill``, also stop the worker running it."""
        if future.cancel():
            return True
        if not kill:
            return False
        with self._lock:
            for worker in self._workers:
                for job in worker.in_hand:
                    if job.future is future and not job.kill_requested:
                        job.kill_requested = True
                        if job.state is JobState.ACKED:
                            self._kill_for_cancel(worker)
                        return True  # a job still in the pipe is stopped when it starts
        return False

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until ``workers`` workers are warm; raise ``EngineStartError`` if they can't be."""
        with self._lock:
            self._changed.wait_for(lambda: self._state is not PoolState.STARTING, timeout)
            if self._fault is not None:
                raise copy.copy(self._fault)

    def shutdown(self, cancel_pending: bool, wait_for_exit: bool) -> None:
        with self._lock:
            if self._state in (PoolState.STARTING, PoolState.RUNNING, PoolState.CLOSING):
                self._state = PoolState.STOPPING if cancel_pending else PoolState.CLOSING
            if self._state is PoolState.STOPPING:
                self._jobs.fail_queued(PoolClosed("cancelled at shutdown"))
            self._dirty = True
            self._readiness.wake()
        if wait_for_exit and threading.current_thread() is not self._thread:
            self._thread.join()

    def stats(self) -> PoolStats:
        now = time.monotonic()
        with self._lock:
            jobs = self._jobs
            return PoolStats(
                state=self._state,
                workers=tuple(w.info(now) for w in self._workers),
                exits=dict(self._exits),
                submitted=jobs.submitted,
                completed=jobs.completed,
                failed=jobs.failed,
                retries=jobs.retried,
                quarantined=tuple(jobs.quarantined),
                queued=jobs.queued,
                crash_streak=self._restarts.streak,
                restart_delay_s=max(0.0, self._next_start_at - now),
            )

    # ---- the loop: wait -> handle messages and exits -> reconcile -----------------

    def _run(self) -> None:
        talking: list[WorkerHandle] = []
        exited: list[WorkerHandle] = []
        try:
            while True:
                with self._lock:
                    self._handle(talking, exited)
                    now = time.monotonic()
                    self._reconcile(now)
                    finished = self._finished()
                    timeout = self._timeout(now)
                    callbacks = self._take_callbacks()
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
            with self._lock:
                callbacks = self._take_callbacks()
                self._readiness.close()
            _call_all(callbacks)
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def _take_callbacks(self) -> list[Callable[[], None]]:
        callbacks, self._callbacks = self._jobs.resolutions() + self._callbacks, []
        return callbacks

    def _finished(self) -> bool:
        if self._workers or self._state in _SERVING - {PoolState.CLOSING}:
            return False
        if self._state is PoolState.CLOSING and self._jobs.queued:
            return False
        if self._state is not PoolState.BROKEN:
            self._state = PoolState.CLOSED
            self._changed.notify_all()
        return True

    def _timeout(self, now: float) -> float | None:
        deadlines = policies.deadlines(self._workers, self._config)
        if policies.busy_with_hard_limit(self._workers, self._config):
            deadlines.append(self._next_sample)
        if self._next_start_at > now:
            deadlines.append(self._next_start_at)
        return max(0.0, min(deadlines) - now) if deadlines else None

    # ---- handle: messages and exits -----------------------------------------------

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
            self._on_messages(worker, worker.receive_rest())
            self._readiness.forget(worker)
            self._on_exit(worker)

    def _on_messages(self, worker: WorkerHandle, messages: list[FromWorker]) -> None:
        for message in messages:
            self._dirty = self._dirty or not isinstance(message, Ack)
            if isinstance(message, Ack):
                job = worker.acked(message.job_id)
                if job is not None:
                    self._jobs.acked(job)
                    if job.kill_requested:
                        self._kill_for_cancel(worker)
            elif isinstance(message, Outcome):
                self._on_outcome(worker, message)
            elif isinstance(message, Declined):
                job = worker.declined(message.job_id)
                if job is not None:
                    self._put_back(job)
            elif isinstance(message, Ready):
                if worker.ready(message.rss_mb):
                    self._start_failures = 0
                    log.info(
                        "worker %d ready in %.2fs, RSS %.0f MB",
                        worker.pid,
                        message.startup_s,
                        message.rss_mb,
                    )
            elif isinstance(message, StartFailed):
                worker.start_error = message.error
                log.error("worker %d failed to start: %s", worker.pid, message.traceback.strip())

    def _on_outcome(self, worker: WorkerHandle, outcome: Outcome) -> None:
        job = worker.settle(outcome)
        if job is None:
            log.error("worker %d answered job %d it was not given", worker.pid, outcome.job_id)
            return
        self._restarts.job_finished()
        job.attempts.append(Attempt.of(worker.pid, outcome.error, outcome.elapsed_s))
        self._jobs.finish(job, outcome.recognition, outcome.error, worker.pid, outcome.rss_mb)

    def _on_exit(self, worker: WorkerHandle) -> None:
        now = time.monotonic()
        exitcode = worker.reap()
        cause = classify_exit(
            worker.end_cause,
            exitcode,
            worker.state is WorkerState.STARTING,
            sent_kill=worker.sent_kill,
        )
        tail = "" if cause in PLANNED else worker.stderr_tail()
        worker.release()
        self._workers.remove(worker)
        if cause is ExitCause.START_FAILED:
            self._on_start_failure(worker, exitcode, tail, now)
        elif cause in UNPLANNED:
            crash_loop = self._restarts.worker_died(now, cause, tail)
            if crash_loop is not None:
                self._break(crash_loop)
            self._next_start_at = max(self._next_start_at, now + self._restarts.delay())
        for job in worker.in_hand:
            self._on_lost_job(worker, job, cause, exitcode, tail, now)
        record = WorkerExit(
            worker.pid, cause, worker.rss_mb, worker.jobs, now - worker.started_at, exitcode
        )
        self._exits[cause.value] += 1
        log.log(logging.INFO if cause in PLANNED else logging.WARNING, "%s", record)
        callback = self._on_worker_exit
        if callback is not None:
            self._callbacks.append(lambda: callback(record))
        self._changed.notify_all()

    def _on_start_failure(
        self, worker: WorkerHandle, exitcode: int | None, tail: str, now: float
    ) -> None:
        self._start_failures += 1
        error = start_failure_error(
            self._config.engine,
            worker.pid,
            worker.start_error,
            exitcode,
            tail,
            attempt=self._start_failures,
            of=self._config.max_start_failures,
        )
        if self._start_failures >= self._config.max_start_failures:
            self._break(error)
        else:
            self._next_start_at = now + 0.5 * 2 ** (self._start_failures - 1)

    def _break(self, error: OcrPoolError) -> None:
        """Workers cannot be kept alive: fail what waits, refuse what comes."""
        log.error("%s", error)
        self._fault = error
        self._state = PoolState.BROKEN
        self._jobs.fail_queued(error)
        self._changed.notify_all()

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
            self._put_back(job)
            return
        if job.kill_requested:
            cause = ExitCause.CANCELLED
        error = lost_job_error(
            cause,
            job.label,
            worker.pid,
            exitcode,
            tail,
            timeout=self._config.job_timeout,
            rss_mb=worker.rss_mb,
            limit_mb=policies.rss_limit(self._config.effective_hard_rss_mb, self._config, worker),
        )
        job.attempts.append(Attempt.of(worker.pid, error, now - job.acked_at))
        if cause in RETRYABLE and self._state in _SERVING and self._jobs.retry(job, error):
            return
        self._jobs.finish(job, None, error, worker.pid, worker.rss_mb)

    def _put_back(self, job: JobRecord) -> None:
        """Queue a job that was never started again, or end it if nothing will serve it."""
        if self._state in _SERVING:
            self._jobs.put_back(job)
        else:
            self._jobs.finish(job, None, self._fault or PoolClosed(f"{job.label}: cancelled"))

    def _kill_for_cancel(self, worker: WorkerHandle) -> None:
        worker.stop(ExitCause.CANCELLED, Ask.SIGTERM, self._config.kill_grace)

    def _abort_all(self, error: OcrPoolError) -> None:
        self._jobs.fail_queued(error)
        for worker in self._workers:
            worker.stop(ExitCause.SHUTDOWN, Ask.NOTHING, 0.0)
            for job in worker.in_hand:
                self._jobs.finish(job, None, error)
            worker.reap()
            self._readiness.forget(worker)
            worker.release()
        self._workers.clear()
        self._state = PoolState.CLOSED
        self._changed.notify_all()

    # ---- reconcile: apply the policies (policies.py) ------------------------------

    def _reconcile(self, now: float) -> None:
        config, workers = self._config, self._workers
        for worker in workers:
            worker.escalate(now)
        policies.enforce_deadlines(workers, config, now)
        if policies.busy_with_hard_limit(workers, config) and now >= self._next_sample:
            self._next_sample = now + config.rss_sample_interval
            policies.enforce_hard_limit(workers, config)
        if not self._dirty:
            return  # only acknowledgements arrived: no worker or job changed hands
        self._dirty = False
        policies.retire_due(workers, config)
        if self._state in _SERVING:
            active = policies.promote_spares(workers, config.workers)
            if self._state is PoolState.STARTING and active >= config.workers:
                self._state = PoolState.RUNNING
                self._changed.notify_all()
        if now >= self._next_start_at:
            for _ in range(policies.workers_to_start(workers, config, self._wanted())):
                self._start_worker()
        if self._state in _SERVING:
            policies.dispatch(workers, self._jobs, config.prefetch_below_s)
        if self._state is PoolState.STOPPING:
            policies.wind_down(workers, config, stop_running=True)
        elif self._state not in _SERVING or (
            self._state is PoolState.CLOSING and not self._jobs.queued
        ):
            policies.wind_down(workers, config, stop_running=False)

    def _wanted(self) -> int:
        """How many warm or warming workers the pool should have now."""
        if self._state in (PoolState.STARTING, PoolState.RUNNING):
            return self._config.workers + self._config.spares
        if self._state is PoolState.CLOSING and self._jobs.queued:
            return self._config.workers
        return 0

    def _start_worker(self) -> None:
        self._spawned += 1
        config = self._config
        spec = WorkerSpec(
            engine=config.engine,
            engine_options=dict(config.engine_options),
            stderr_path=os.path.join(self._log_dir, f"worker-{self._spawned}.log"),
            max_rss_mb=config.max_rss_mb,
            rss_relative=config.rss_relative,
            warm_nice=config.warm_nice,
        )
        quota = policies.quota(config, self._spawned, self._rng)
        worker = WorkerHandle(self._context, spec, quota)
        self._workers.append(worker)
        self._readiness.watch(worker)
        log.info("started worker %d (quota %s jobs)", worker.pid, worker.quota)


def _call_all(callbacks: list[Callable[[], None]]) -> None:
    """Resolve futures and call user callbacks outside the lock (they may call back in)."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("ocrpool callback failed")
