"""The supervisor: one thread that runs the pool, reading like its diagram.

::

    callers            supervisor thread                                   workers
    -------            -----------------                                   -------
    submit() -> LeaseBook.add --wake--+    (a job a worker can take now is sent from
                                      |     submit, under the same lock: no wake)
                                      v
              +----> wait (epoll: pipes, sentinels, wake-up pipe; timeout = next deadline)
              |          |
              |      handle messages   Ready -> SPARE    Ack -> job ACKED    Declined -> requeue
              |          |             Outcome -> job DONE, future resolved (quota/RSS -> due)
              |      handle exits      reap, judge (blame.py), retry/fail/requeue its jobs
              |          |
              |      reconcile         deadlines (SIGTERM, grace, SIGKILL), hard RSS (SIGKILL),
              |          |             retire due workers, promote spares, start workers,
              +----------+             dispatch Job ---pipe---> worker (at most its quota)

Who owns what: ``LeaseBook`` (leases.py) every job, who holds it, its attempts and
future; ``WorkerHandle`` (handle.py) one worker's life cycle and its only way to end;
``blame.py`` whose fault a worker's end was and what it costs; ``PoolLife``
(lifecycle.py) the pool's state; this module the loop and the policies' order. Only a
failed engine start breaks the pool: a worker's death, at any step from fork to reap,
is an event that one worker and at most one job pay for. Everything here runs under one
lock taken once per wake-up; futures are resolved and user callbacks called after it is
released. Time comes from the clock passed in.
"""

from __future__ import annotations

import errno
import functools
import logging
import math
import multiprocessing.util
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import Future

from ocrpool.engines.base import JobOptions, Source
from ocrpool.errors import EngineStartError, JobCancelled, OcrPoolError, PoolClosed
from ocrpool.pool import policies
from ocrpool.pool.blame import LOST_STATUS, PLANNED, Cost, Death, Verdict, judge
from ocrpool.pool.config import PoolConfig
from ocrpool.pool.documents import Split
from ocrpool.pool.exits import lost_job_error, options_refused_error, start_failure_error
from ocrpool.pool.handle import Ask, WorkerHandle, process_context, spills
from ocrpool.pool.leases import (
    Clock,
    Lease,
    LeaseBook,
    LeaseState,
    call_all,
    mark_owner_thread,
)
from ocrpool.pool.lifecycle import BREAK_RECORD, PoolLife
from ocrpool.pool.protocol import Ack, Declined, FromWorker, Outcome, Ready, StartFailed, WorkerSpec
from ocrpool.pool.readiness import Readiness
from ocrpool.pool.restarts import RestartBackoff
from ocrpool.pool.scratch import PoolFolder
from ocrpool.processes import CWD_ADVICE, cwd_problem
from ocrpool.results import Attempt, OcrResult
from ocrpool.stats import ExitCause, PoolState, PoolStats, WorkerExit

log = logging.getLogger("ocrpool")

_running: set[Supervisor] = set()
"""The supervisors whose loop has not ended, for ``_stop_at_exit``."""

_SHORT_OF = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN})
"""Why a fork can fail for want of a resource this process may get back."""


class Supervisor:
    def __init__(
        self,
        config: PoolConfig,
        on_worker_exit: Callable[[WorkerExit], None] | None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._config = config
        self._on_worker_exit = on_worker_exit
        self._clock = clock
        self._context = process_context(config.start_method)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._life = PoolLife()
        self._book: LeaseBook[WorkerHandle] = LeaseBook(config.retries, clock)
        self._workers: list[WorkerHandle] = []
        self._spawned = 0
        self._rng = random.Random()
        self._exits: Counter[str] = Counter()
        self._start_failures = 0
        self._short_since: float | None = None
        """When forks began to fail for want of descriptors or memory (``None``: every
        slot has served since), and how many have failed since."""
        self._short_tries = 0
        self._backoff = RestartBackoff()
        self._next_start_at = 0.0
        self._next_sample = 0.0
        self._wake_at = 0.0
        """When the supervisor's wait ends at the latest (its next deadline)."""
        self._warmup_s = 0.0
        """How long the last worker took from its start to warm: how far ahead of a
        recycle its replacement starts."""
        self._ever_ready = False
        """An engine started with these options: a later refusal means the machine changed
        (a file an option names vanished), so it is retried as any failed start."""
        self._dirty = True
        """Whether anything but an acknowledgement happened since the policies last ran."""
        self._callbacks: list[Callable[[], None]] = []
        try:
            self._folder = PoolFolder()
        except OSError as error:
            raise _short_at_start(error) from None
        try:
            self._readiness = Readiness()
        except OSError as error:
            self._folder.remove()
            raise _short_at_start(error) from None
        self._thread = threading.Thread(target=self._run, name="ocrpool-supervisor", daemon=True)
        _stop_at_exit_of_this_process()
        _running.add(self)
        try:
            self._thread.start()
        except BaseException as error:  # no thread: at exit, nothing to stop nor to join
            _running.discard(self)
            self._readiness.close()
            self._folder.remove()
            if isinstance(error, RuntimeError):  # "can't start new thread": a limit
                raise EngineStartError(
                    f"could not start the pool's supervisor thread: {error} (a limit on "
                    "threads, processes or memory: ulimit -u, ulimit -v, a container's "
                    "pids.max)"
                ) from None
            raise

    # ---- caller side (any thread) -------------------------------------------------

    @property
    def folder(self) -> str:
        """The pool's own folder (scratch.py), removed when this loop ends."""
        return self._folder.path

    def submit(
        self,
        source: Source,
        label: str,
        raises: bool,
        options: JobOptions | None = None,
        split: Split | None = None,
    ) -> Future[OcrResult]:
        if (forked := self._life.forked_refusal()) is not None:
            raise forked
        with self._lock:
            if not self._life.accepting:
                raise self._life.refusal()
            lease = self._book.add(source, label, raises, options, split)
            if self._life.serving and self._book.queued == 1 and not spills(source):
                # a worker that can take it gets it now, without waking the supervisor,
                # unless its deadline comes before the supervisor would wake anyway
                config = self._config
                if policies.dispatch(self._workers, self._book, config.effective_prefetch_below_s):
                    timeout = config.job_timeout
                    if timeout is not None and self._clock() + timeout < self._wake_at:
                        self._readiness.wake()
            if self._book.queued:
                self._readiness.wake()
        return lease.future

    def cancel(self, future: Future[OcrResult], kill: bool) -> bool:
        """Cancel a queued job; with ``kill``, also a started one: stop the worker running
        it, or end it where it waits to be retried (no worker holds it then)."""
        if future.cancel():
            return True
        if not kill:
            return False
        with self._lock:
            found = self._book.request_kill(future)
            if found is not None:
                worker, lease = found
                if lease.state is LeaseState.ACKED:
                    self._kill_for_cancel(worker, lease)
                    self._readiness.wake()  # its grace period is a deadline the loop must see
                return True  # a job still in the pipe is stopped when it starts
            error = JobCancelled("cancelled while it waited to be retried")
            ended = self._book.end_queued(future, error)
            resolutions = self._book.resolutions()
        call_all(resolutions)
        return ended

    def withdraw(self, futures: Collection[Future[OcrResult]]) -> bool:
        """Take queued jobs out of the queue all together, or none if one has started
        (``LeaseBook.withdraw``): atomic, as no worker can take one meanwhile."""
        with self._lock:
            return self._book.withdraw(futures)

    def wait_ready(self) -> None:
        """Block until ``workers`` workers are warm or the pool is shut down; raise
        ``EngineStartError`` if they can't be. No timeout of its own: the loop decides, by
        ``start_timeout`` and ``max_start_failures``; starts the outside cut short do not
        count, so no sum of those bounds the wait, and a bound returned a pool still
        starting as if it were warm."""
        with self._lock:
            self._changed.wait_for(lambda: self._life.state is not PoolState.STARTING)
            if self._life.fault is not None:
                raise self._life.refusal()

    def shutdown(self, cancel_pending: bool, wait_for_exit: bool) -> None:
        if self._life.forked_refusal() is not None:
            return  # a forked child's copy: nothing of the pool runs here
        with self._lock:
            if cancel_pending and self._life.state is not PoolState.STOPPING:
                if self._life.serving:
                    self._life.become(PoolState.STOPPING)
            elif self._life.accepting:
                self._life.become(PoolState.CLOSING)
            if self._life.state is PoolState.STOPPING:
                self._book.fail_queued(PoolClosed("cancelled at shutdown"))
            self._dirty = True
            self._readiness.wake()
        if wait_for_exit and threading.current_thread() is not self._thread:
            self._thread.join()

    def abandon(self) -> None:
        """Its pool was garbage collected unclosed: close it without waiting, so the jobs
        queued (whose futures may still be held) finish first. The collector may run this
        on the supervisor thread inside its lock, so from there a thread of its own does."""
        close = functools.partial(self.shutdown, cancel_pending=False, wait_for_exit=False)
        if threading.current_thread() is self._thread:
            threading.Thread(target=close, name="ocrpool-abandoned", daemon=True).start()
        else:
            close()

    def stats(self) -> PoolStats:
        now = self._clock()
        with self._lock:
            book = self._book
            return PoolStats(
                state=self._life.state,
                workers=tuple(w.info(now) for w in self._workers),
                exits=dict(self._exits),
                submitted=book.submitted,
                completed=book.completed,
                failed=book.failed,
                retries=book.retried,
                quarantined=tuple(book.quarantined),
                queued=book.queued,
                crash_streak=self._backoff.streak,
                restart_delay_s=max(0.0, self._next_start_at - now),
            )

    # ---- the loop: wait -> handle messages and exits -> reconcile -----------------

    def _run(self) -> None:
        mark_owner_thread(self._book)
        # this thread starts the fork server, which inherits its signal mask and learns
        # of its workers' exits only from SIGCHLD: blocked (a mask the caller's parent
        # handed on), no exit would ever be seen and a recycle or close wait for ever
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        talking: list[WorkerHandle] = []
        exited: list[WorkerHandle] = []
        try:
            while True:
                with self._lock:
                    self._handle(talking, exited)
                    now = self._clock()
                    self._reconcile(now)
                    finished = self._finished()
                    timeout = self._timeout(now)
                    self._wake_at = math.inf if timeout is None else now + timeout
                    callbacks = self._take_callbacks()
                call_all(callbacks)
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
            call_all(callbacks)
            self._folder.remove()
            _running.discard(self)

    def _take_callbacks(self) -> list[Callable[[], None]]:
        callbacks, self._callbacks = self._book.resolutions() + self._callbacks, []
        return callbacks

    def _finished(self) -> bool:
        life = self._life
        if self._workers or life.accepting:
            return False
        if life.state is PoolState.CLOSING and self._book.queued:
            return False
        if life.state in (PoolState.CLOSING, PoolState.STOPPING):
            life.become(PoolState.CLOSED)
            self._changed.notify_all()
        self._book.fail_all(life.refusal())  # nothing is left pending when the loop ends
        return True

    def _timeout(self, now: float) -> float | None:
        deadlines = policies.deadlines(self._workers, self._book, self._config)
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
        book = self._book
        for message in messages:
            self._dirty = self._dirty or not isinstance(message, Ack)
            if isinstance(message, Ack):
                self._on_started(worker, message.job_id)
            elif isinstance(message, Outcome):
                self._on_outcome(worker, message)
                if message.started is not None:
                    self._on_started(worker, message.started)
            elif isinstance(message, Declined):
                lease = book.decline(worker, message.job_id)
                if lease is not None:
                    worker.declined(empty=not book.holds(worker))
                    self._put_back(lease)
            elif isinstance(message, Ready):
                hard = self._config.effective_hard_rss_mb
                if hard is not None and not self._config.rss_relative and message.rss_mb >= hard:
                    # it would be killed in its first job, and the job blamed for it
                    reason = (
                        f"its engine holds {message.rss_mb:.0f} MB once warm, past the hard "
                        f"memory limit of {hard:.0f} MB: raise max_rss_mb (or hard_rss_mb)"
                    )
                    worker.stop(ExitCause.START_FAILED, Ask.NOTHING, 0.0, reason)
                elif worker.ready(message.rss_mb):
                    self._start_failures = 0
                    self._warmup_s = message.startup_s
                    self._ever_ready = True
                    log.info(
                        "worker %d ready in %.2fs, RSS %.0f MB",
                        worker.pid,
                        message.startup_s,
                        message.rss_mb,
                    )
            elif isinstance(message, StartFailed):
                worker.start_failed(message.error, message.option)
                refused = message.option is not None and not self._ever_ready
                level = logging.DEBUG if refused else logging.ERROR
                log.log(
                    level, "worker %d failed to start: %s", worker.pid, message.traceback.strip()
                )

    def _on_started(self, worker: WorkerHandle, job_id: int) -> None:
        lease = self._book.acked(worker, job_id)
        if lease is not None and self._book.to_be_stopped(lease):
            self._kill_for_cancel(worker, lease)

    def _on_outcome(self, worker: WorkerHandle, outcome: Outcome) -> None:
        lease = self._book.settle(worker, outcome.job_id)
        worker.finished(outcome, empty=not self._book.holds(worker))
        if lease is None:
            log.error("worker %d answered job %d it was not given", worker.pid, outcome.job_id)
            return
        self._backoff.job_finished()
        attempt = Attempt.of(worker.pid, outcome.error, outcome.elapsed_s)
        split, pages = lease.split, outcome.pages
        if split is not None and pages is not None and self._book.to_be_stopped(lease):
            # a kill was asked for while it counted (its worker is being stopped): the
            # document is not split, its future ends as a job stopped so (JobCancelled)
            error = JobCancelled(f"{lease.label}: cancelled while its pages were counted")
            attempt = Attempt.of(worker.pid, error, outcome.elapsed_s)
            self._book.finish(lease, error=error, pid=worker.pid, attempt=attempt)
            return
        if split is not None and pages is not None:
            jobs = split.pages(pages.path, lease.label, pages.total, pages.stamp)
            self._book.expand(lease, jobs, split.found, attempt)
            if not self._life.serving:  # stopping: they would wait for ever
                self._book.fail_queued(self._life.refusal())
            return
        self._book.finish(
            lease,
            outcome.recognition,
            outcome.error,
            pid=worker.pid,
            rss_mb=outcome.rss_mb,
            attempt=attempt,
        )

    def _on_exit(self, worker: WorkerHandle) -> None:
        """A worker ended, at whatever step: judge it, then settle what it held."""
        now = self._clock()
        exitcode = worker.reap()
        verdict = judge(worker.death(exitcode, self._book.started(worker)))
        cause = verdict.cause
        tail = "" if cause in PLANNED else worker.stderr_tail()
        worker.release()
        self._workers.remove(worker)
        for lease in self._book.release(worker):
            if spills(lease.source):
                worker.drop_spill(lease.job_id)
            self._settle_lost(worker, lease, verdict, exitcode, tail, now)
        if verdict.start_failure:
            if worker.refused_option is not None and not self._ever_ready:
                self._break(
                    options_refused_error(
                        self._config.engine,
                        worker.start_error,
                        worker.refused_option,
                        exitcode,
                        tail,
                    )
                )
            else:
                self._on_start_failure(worker.pid, worker.start_error, exitcode, tail, now)
        elif verdict.backs_off:
            self._next_start_at = max(self._next_start_at, now + self._backoff.worker_died())
        record = WorkerExit(
            worker.pid, cause, worker.rss_mb, worker.jobs, now - worker.started_at, exitcode
        )
        self._record_exit(record, verdict)

    def _record_exit(self, record: WorkerExit, verdict: Verdict) -> None:
        """Count, log and report one worker's end. A failed start's end is only INFO: the
        start failure is logged with its cause (or told as the pool's break) already."""
        self._exits[record.cause.value] += 1
        quiet = record.cause in PLANNED or verdict.start_failure
        log.log(
            logging.INFO if quiet else logging.WARNING,
            "%s; blamed: %s",
            record,
            verdict.blamed.value,
        )
        callback = self._on_worker_exit
        if callback is not None:
            self._callbacks.append(lambda: callback(record))
        self._changed.notify_all()

    def _on_lost_at_fork(self, now: float) -> None:
        """The fork server forked a worker that died before it read its start data (an
        outside SIGKILL: multiprocessing then raises BrokenPipeError): judged as any death
        while starting, never the engine's; its pid and status never reached us."""
        death = Death(None, LOST_STATUS, sent_kill=False, warm=False, started_job=False)
        verdict = judge(death)
        self._next_start_at = max(self._next_start_at, now + self._backoff.worker_died())
        self._readiness.wake()  # no exit will wake the loop to start its replacement
        self._record_exit(WorkerExit(None, verdict.cause, None, 0, 0.0, None), verdict)

    def _on_start_failure(
        self, pid: int | None, detail: str | None, exitcode: int | None, tail: str, now: float
    ) -> None:
        self._start_failures += 1
        error = start_failure_error(
            self._config.engine,
            pid,
            detail,
            exitcode,
            tail,
            attempt=self._start_failures,
            of=self._config.max_start_failures,
        )
        if self._start_failures >= self._config.max_start_failures:
            self._break(error)
        else:
            log.warning("%s", error)
            self._next_start_at = now + 0.5 * 2 ** (self._start_failures - 1)

    def _on_short_of(self, error: OSError, now: float) -> None:
        """This process is out of descriptors or memory: not the engine's fault, and it
        may pass, so the fork is tried again after a pause, as after an outside kill. Not
        for longer than ``start_timeout`` while the pool has yet to start or no worker
        serves: then nothing else makes progress, and a limit that lasts (``ulimit -n``
        too low for the pool) would leave ``OcrPool()`` and every job waiting for ever."""
        if self._short_since is None:
            self._short_since = now
        self._short_tries += 1
        waited = now - self._short_since
        stuck = self._life.state is PoolState.STARTING or not any(
            worker.active for worker in self._workers
        )
        if stuck and waited >= self._config.start_timeout:
            self._break(
                EngineStartError(
                    f"no worker process could start for {waited:.0f} s: {error} (this "
                    "process's limit on open files, ulimit -n, or on memory or processes)",
                    attempts=self._short_tries,
                )
            )
            return
        log.warning("could not start a worker process: %s; trying again", error)
        self._next_start_at = max(self._next_start_at, now + self._backoff.worker_died())
        self._readiness.wake()  # no exit will wake the loop to try again

    def _break(self, error: OcrPoolError) -> None:
        """The engine cannot start: fail what waits, refuse what comes."""
        if self._life.breaks(error):
            log.error("%s", error, extra={BREAK_RECORD: True})
            self._book.fail_queued(error)
            self._changed.notify_all()

    def _settle_lost(
        self,
        worker: WorkerHandle,
        lease: Lease,
        verdict: Verdict,
        exitcode: int | None,
        tail: str,
        now: float,
    ) -> None:
        """What a job held by an ended worker gets: a never-started one goes back to the
        queue, and so does a started one the verdict charges nothing; any other pays the
        verdict's cost."""
        book = self._book
        cancelled = book.to_be_stopped(lease)
        if lease.state is not LeaseState.ACKED or (verdict.cost is Cost.NONE and not cancelled):
            self._put_back(lease)
            return
        cause = ExitCause.CANCELLED if cancelled else verdict.cause
        error = lost_job_error(
            cause,
            lease.label,
            worker.pid,
            exitcode,
            tail,
            timeout=self._config.job_timeout,
            rss_mb=worker.rss_mb,
            limit_mb=policies.rss_limit(self._config.effective_hard_rss_mb, self._config, worker),
        )
        attempt = Attempt.of(worker.pid, error, now - lease.acked_at)
        if cause is ExitCause.CANCELLED or verdict.cost is Cost.FAIL:
            book.finish(lease, error=error, pid=worker.pid, rss_mb=worker.rss_mb, attempt=attempt)
        else:
            book.charge(lease, attempt, error, retry=self._life.serving)

    def _put_back(self, lease: Lease) -> None:
        """Queue a job that was never started again, or end it if nothing will serve it."""
        if self._life.serving:
            self._book.put_back(lease)
        else:
            self._book.finish(lease, error=self._life.refusal())

    def _kill_for_cancel(self, worker: WorkerHandle, lease: Lease) -> None:
        worker.stop(
            ExitCause.CANCELLED, Ask.SIGTERM, self._config.kill_grace, aimed_at=lease.job_id
        )

    def _abort_all(self, error: OcrPoolError) -> None:
        """The loop itself failed: every open job fails at once, every worker is killed."""
        self._life.breaks(error)
        self._book.fail_all(error)
        for worker in self._workers:
            worker.stop(ExitCause.SHUTDOWN, Ask.NOTHING, 0.0)
            worker.reap()
            self._readiness.forget(worker)
            worker.release()
        self._workers.clear()
        self._changed.notify_all()

    # ---- reconcile: apply the policies (policies.py) ------------------------------

    def _reconcile(self, now: float) -> None:
        config, workers, book, life = self._config, self._workers, self._book, self._life
        for worker in workers:
            worker.escalate(now)
        policies.enforce_deadlines(workers, book, config, now)
        if policies.busy_with_hard_limit(workers, config) and now >= self._next_sample:
            self._next_sample = now + config.rss_sample_interval
            policies.enforce_hard_limit(workers, config)
        if not self._dirty:
            return  # only acknowledgements arrived: no worker or job changed hands
        self._dirty = False
        policies.retire_due(workers, config)
        if life.serving:
            active = policies.promote_spares(workers, config.workers)
            if active >= config.workers:
                # a shortage has passed only once every slot serves: a fork that worked
                # proves nothing, since one refused mid-request (EMFILE once the fork
                # server took the connection) kills the server and the workers it forked
                self._short_since, self._short_tries = None, 0
            if life.state is PoolState.STARTING and active >= config.workers:
                life.become(PoolState.RUNNING)
                self._changed.notify_all()
        if now >= self._next_start_at:
            for _ in range(policies.workers_to_start(workers, config, self._wanted())):
                if not life.serving:
                    break  # the last start broke the pool
                self._start_worker(now)
        if life.serving:
            policies.dispatch(workers, book, config.effective_prefetch_below_s)
        if life.state is PoolState.STOPPING:
            policies.wind_down(workers, config, stop_running=True)
        elif not life.serving or (life.state is PoolState.CLOSING and not book.queued):
            policies.wind_down(workers, config, stop_running=False)

    def _wanted(self) -> int:
        """How many warm or warming workers the pool should have now."""
        if self._life.accepting:
            spares = policies.spares_wanted(self._workers, self._config, self._warmup_s)
            return self._config.workers + spares
        if self._life.state is PoolState.CLOSING and self._book.queued:
            return self._config.workers
        return 0

    def _start_worker(self, now: float) -> None:
        """Fork a worker. A fork the fork server's death cut short is an outside kill; one
        this process lacks descriptors or memory for (checked first, for descriptors)
        waits and tries again (``_on_short_of``); any other failure is a failed start."""
        problem = cwd_problem()
        if problem is not None:  # the caller will not move mid-run: no start can work
            message = f"no worker can start: {problem}, and multiprocessing starts each in it"
            self._break(EngineStartError(f"{message}; {CWD_ADVICE}", attempts=1))
            return
        short = _descriptors_short(_FORK_DESCRIPTORS)
        if short is not None:
            self._on_short_of(short, now)
            return
        self._spawned += 1
        self._folder.ensure()
        config = self._config
        spec = WorkerSpec(
            engine=config.engine,
            engine_options=dict(config.engine_options),
            stderr_path=os.path.join(self._folder.path, f"worker-{self._spawned}.log"),
            max_rss_mb=config.max_rss_mb,
            rss_relative=config.rss_relative,
            warm_nice=config.warm_nice,
            limits=config.limits,
        )
        quota = policies.quota(config, self._spawned, self._rng)
        try:
            worker = WorkerHandle(self._context, spec, quota, self._clock)
        except (ConnectionError, EOFError):
            # the fork server or the child died mid-request (a broken pipe, or EOF where
            # the server tells the child's pid): an outside kill, never the engine's
            self._on_lost_at_fork(now)
            return
        except Exception as error:
            if isinstance(error, OSError) and error.errno in _SHORT_OF:
                self._on_short_of(error, now)
                return
            detail = f"could not start a worker process: {type(error).__name__}: {error}"
            self._on_start_failure(None, detail, None, "", now)
            return
        self._workers.append(worker)
        self._readiness.watch(worker)
        log.info("started worker %d (quota %s jobs)", worker.pid, worker.quota)


_FORK_DESCRIPTORS = 7
"""Descriptors a start holds at once: the worker's pipe (2), then the fork server's
socket and two pipes (5)."""


def _descriptors_short(count: int) -> OSError | None:
    """The error opening ``count`` descriptors now gives, if any. Checked before each
    fork: one the fork server has taken and that then runs out ends the server (it does
    not survive a client that leaves mid-request), and every worker it forked with it,
    so a pool one spare short of its limit lost the workers serving it."""
    held: list[int] = []
    try:
        for _ in range(count):
            held.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as error:
        if error.errno in _SHORT_OF:
            return OSError(error.errno, error.strerror)  # not the probe's /dev/null
    finally:
        for descriptor in held:
            os.close(descriptor)
    return None


def _short_at_start(error: OSError) -> EngineStartError:
    """A pool that could not make its folder, its pipe or its selector: this process is
    out of descriptors (or the temp dir is full)."""
    return EngineStartError(
        f"could not start the pool: {error} (this process's limit on open files, "
        "ulimit -n, or a full temp dir)"
    )


def _stop_at_exit() -> None:
    """Stop the pools nobody closed as the interpreter exits, as ``shutdown(cancel_pending=
    True)`` does: no one is left to read their results, and their folders are removed.

    Run by multiprocessing's own exit function, as a finalizer it runs before it
    terminates and joins every child process: racing the supervisor, which reaps and
    closes the same ones, that raised "process object is closed" or hung for ever on a
    sentinel the supervisor had closed. An ``atexit`` function registered after it is
    not enough: ``multiprocessing.get_logger()`` (``log_to_stderr``) registers it again,
    to run first.
    """
    for supervisor in list(_running):
        supervisor.shutdown(cancel_pending=True, wait_for_exit=True)


_stopping_at_exit_in: int | None = None
"""The process that has ``_stop_at_exit`` registered: a finalizer runs only in the process
that registered it, so a forked child that starts a pool registers its own."""


def _stop_at_exit_of_this_process() -> None:
    global _stopping_at_exit_in
    if _stopping_at_exit_in != os.getpid():
        _stopping_at_exit_in = os.getpid()
        multiprocessing.util.Finalize(None, _stop_at_exit, exitpriority=10)
