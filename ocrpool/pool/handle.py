"""The supervisor's handle on one worker process: its life cycle, its pipe, its end.

Only the supervisor thread touches a handle, and only through these methods, which
enforce the life cycle in one place::

    STARTING --ready--> SPARE --activate--> IDLE <--take/settle--> BUSY
        |                 |                  |                      |
        +-------------- stop(...) ---------- + ---------------------+--> RETIRING | KILLING

There is one way to end a worker, ``stop``: ask (a ``Stop`` message, or SIGTERM, which
makes it dump its stack), wait a grace period, then SIGKILL; the sentinel tells the
supervisor to ``reap`` it. Timeouts, retirements, cancels, limits and shutdown all go
through it (trio's ``deliver_cancel`` policy).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import multiprocessing
import os
import signal
import sys
import termios
import time
from collections import deque
from multiprocessing.context import BaseContext

import psutil

from ocrpool.pool.jobs import JobRecord, JobState
from ocrpool.pool.protocol import FromWorker, Job, Outcome, Stop, ToWorker, WorkerSpec
from ocrpool.pool.worker import worker_main
from ocrpool.processes import MB, read_tail
from ocrpool.stats import ExitCause, WorkerInfo, WorkerState

_ALLOWED = {
    WorkerState.STARTING: {WorkerState.SPARE, WorkerState.KILLING},
    WorkerState.SPARE: {WorkerState.IDLE, WorkerState.RETIRING, WorkerState.KILLING},
    WorkerState.IDLE: {WorkerState.BUSY, WorkerState.RETIRING, WorkerState.KILLING},
    WorkerState.BUSY: {WorkerState.IDLE, WorkerState.KILLING},
    WorkerState.RETIRING: {WorkerState.KILLING},
    WorkerState.KILLING: {WorkerState.KILLING},
}


class Ask(enum.Enum):
    """How ``stop`` first asks a worker to end."""

    MESSAGE = "message"
    """``Stop``: close the engine and exit (a worker with no job in hand)."""
    SIGTERM = "sigterm"
    """The worker dumps its Python stack and dies (a job in hand)."""
    NOTHING = "nothing"
    """SIGKILL at once (a runaway, or a start that will never finish)."""


def process_context(start_method: str) -> BaseContext:
    """Where workers come from. ``forkserver``: forked from a server process that has
    imported the worker's modules but never an engine, so a start costs a fork, not an
    interpreter; ``spawn``: a fresh interpreter each time."""
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(["ocrpool.pool.worker"])
    return context


class WorkerHandle:
    def __init__(self, context: BaseContext, spec: WorkerSpec, quota: int | None) -> None:
        self.stderr_path = spec.stderr_path
        self.conn, child_conn = context.Pipe(duplex=True)
        self.process = context.Process(  # type: ignore[attr-defined]
            target=worker_main, args=(child_conn, spec), name="ocrpool-worker", daemon=True
        )
        self.process.start()
        child_conn.close()
        self.pid: int = self.process.pid
        self.started_at = time.monotonic()
        self.state = WorkerState.STARTING
        self.quota = quota
        self.taken = 0
        """Jobs sent to this worker: never more than ``quota``."""
        self.jobs = 0
        """Jobs it finished."""
        self.rss_mb: float | None = None
        self.warm_rss_mb: float | None = None
        self.in_hand: deque[JobRecord] = deque()
        """Jobs sent, in order: the first may be running, a second one waits in its pipe."""
        self.last_job_s: float | None = None
        self.head_since = self.started_at
        """When the job now first in hand became first: a job the worker never
        acknowledges is timed from here (a frozen worker cannot hold it forever)."""
        self.due: ExitCause | None = None
        """Why this worker takes no more jobs and retires once its hands are empty."""
        self.end_cause: ExitCause | None = None
        """Why the supervisor is ending it (set by ``stop``, before any signal)."""
        self.sent_kill = False
        """Whether the supervisor SIGKILLed it: a SIGKILL exit it did not send came from
        outside."""
        self.start_error: str | None = None
        self.kill_deadline: float | None = None
        self.readable = True
        """False once reading the pipe hit EOF: everything the worker wrote has been read."""
        self.writable = True
        """False once a send failed: the worker is gone, but what it wrote may be unread."""
        self._psutil = psutil.Process(self.pid)

    # ---- life cycle ---------------------------------------------------------------

    def _become(self, state: WorkerState) -> None:
        if state not in _ALLOWED[self.state]:
            raise RuntimeError(f"worker {self.pid}: {self.state.value} -> {state.value}")
        self.state = state

    @property
    def active(self) -> bool:
        """Serving jobs (idle or busy)."""
        return self.state in (WorkerState.IDLE, WorkerState.BUSY)

    @property
    def job(self) -> JobRecord | None:
        """The job this worker is on (or will start next)."""
        return self.in_hand[0] if self.in_hand else None

    def job_deadline(self, timeout: float | None) -> float | None:
        """When the job in hand runs out of time: ``timeout`` after its Ack, or after it
        became first in hand while the worker has not acknowledged it."""
        job = self.job
        if not timeout or job is None or self.state is not WorkerState.BUSY:
            return None
        return (job.acked_at if job.state is JobState.ACKED else self.head_since) + timeout

    def ready(self, rss_mb: float) -> bool:
        """A ``Ready`` arrived: the engine is warm. False if the worker is already ending."""
        if self.state is not WorkerState.STARTING:
            return False
        self._become(WorkerState.SPARE)
        self.warm_rss_mb = self.rss_mb = rss_mb
        return True

    def activate(self) -> None:
        self._become(WorkerState.IDLE)

    def can_take(self, depth: int) -> bool:
        """Whether a job may be sent with ``depth`` jobs already in hand: never past the
        quota, never to a worker that is due to retire."""
        return (
            self.active
            and self.writable
            and self.due is None
            and len(self.in_hand) == depth
            and (self.quota is None or self.taken < self.quota)
        )

    def take(self, job: JobRecord) -> bool:
        """Send ``job``; False (job not in hand) if the worker is gone."""
        if not self.in_hand:
            self.head_since = time.monotonic()
        self.in_hand.append(job)
        self.taken += 1
        if self.state is WorkerState.IDLE:
            self._become(WorkerState.BUSY)
        if self._send(Job(job.job_id, job.source)):
            return True
        self.in_hand.pop()
        self.taken -= 1
        return False

    def acked(self, job_id: int) -> JobRecord | None:
        job = self.job
        return job if job is not None and job.job_id == job_id else None

    def settle(self, outcome: Outcome) -> JobRecord | None:
        """Record a job's end; the job it belongs to, or None if it is not the one in hand."""
        job = self.in_hand.popleft() if self.in_hand else None
        self.jobs += 1
        self.rss_mb = outcome.rss_mb
        self.last_job_s = outcome.elapsed_s
        if self.due is None and outcome.over_limit:
            self.due = ExitCause.SOFT_RSS
        if self.due is None and self.quota is not None and self.jobs >= self.quota:
            self.due = ExitCause.MAX_JOBS
        self._idle_if_empty()
        return job if job is not None and job.job_id == outcome.job_id else None

    def declined(self, job_id: int) -> JobRecord | None:
        """The worker refused a job (past its soft limit): hand it back."""
        job = self.job
        if job is None or job.job_id != job_id:
            return None
        self.in_hand.popleft()
        self.taken -= 1
        self.due = self.due or ExitCause.SOFT_RSS
        self._idle_if_empty()
        return job

    def _idle_if_empty(self) -> None:
        """After the first job in hand left: the next is timed from now, or none is left."""
        self.head_since = time.monotonic()
        if self.state is WorkerState.BUSY and not self.in_hand:
            self._become(WorkerState.IDLE)

    def stop(self, cause: ExitCause, ask: Ask, grace: float) -> None:
        """End the worker: ask as ``ask`` says, SIGKILL after ``grace`` seconds."""
        if self.end_cause is not None and ask is not Ask.NOTHING:
            return  # already on its way out; only a harder stop may overtake
        self.end_cause = cause
        if ask is Ask.MESSAGE:
            self._become(WorkerState.RETIRING)
            if not self._send(Stop()):
                ask = Ask.NOTHING
        else:
            self._become(WorkerState.KILLING)
        if ask is Ask.NOTHING:
            self._signal(signal.SIGKILL)
            self.kill_deadline = None
            return
        if ask is Ask.SIGTERM:
            self._signal(signal.SIGTERM)
        self.kill_deadline = time.monotonic() + grace

    def escalate(self, now: float) -> None:
        """SIGKILL a worker whose grace period is over."""
        if self.kill_deadline is not None and now >= self.kill_deadline:
            self._signal(signal.SIGKILL)
            self.kill_deadline = None

    def reap(self) -> int | None:
        """The exit status, once the sentinel has fired.

        The sentinel fires when the child's descriptors close, a moment before the kernel
        makes it waitable, so this blocks briefly rather than polling once.
        """
        self.process.join(timeout=5.0)
        exitcode: int | None = self.process.exitcode
        return exitcode

    def release(self) -> None:
        """Free the pipe, the process object and the log of a reaped worker."""
        self.conn.close()
        self.process.close()
        with contextlib.suppress(OSError):
            os.unlink(self.stderr_path)

    # ---- pipe and probes ----------------------------------------------------------

    @property
    def sentinel(self) -> int:
        sentinel: int = self.process.sentinel
        return sentinel

    def _send(self, message: ToWorker) -> bool:
        try:
            self.conn.send(message)
        except (OSError, EOFError):
            self.writable = False
            return False
        return True

    def receive_ready(self) -> list[FromWorker]:
        """The messages already in the pipe, once it is known to be readable.

        ``FIONREAD`` asks the kernel how many bytes wait, one cheap system call, where
        ``Connection.poll`` builds a selector each time.
        """
        messages: list[FromWorker] = []
        try:
            messages.append(self.conn.recv())
            while self._pending_bytes():
                messages.append(self.conn.recv())
        except (OSError, EOFError):
            self.readable = False
        return messages

    def _pending_bytes(self) -> int:
        raw = fcntl.ioctl(self.conn.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(raw, sys.byteorder)

    def receive_rest(self) -> list[FromWorker]:
        """Every message still in the pipe of a worker that exited, up to EOF."""
        messages: list[FromWorker] = []
        try:
            while self.readable and self.conn.poll():
                messages.append(self.conn.recv())
        except (OSError, EOFError):
            self.readable = False
        return messages

    def sample_rss(self) -> float | None:
        try:
            rss: int = self._psutil.memory_info().rss
        except psutil.Error:
            return None
        if rss:  # a process that is already exiting reads as 0
            self.rss_mb = rss / MB
        return self.rss_mb

    def stderr_tail(self) -> str:
        return read_tail(self.stderr_path)

    def info(self, now: float) -> WorkerInfo:
        return WorkerInfo(self.pid, self.state, self.jobs, self.rss_mb, now - self.started_at)

    def _signal(self, signum: signal.Signals) -> None:
        self.sent_kill = self.sent_kill or signum is signal.SIGKILL
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)
