"""The supervisor's handle on one worker process: its life cycle, its pipe, its end.

Only the supervisor thread touches a handle, and only through these methods, which
enforce the life cycle in one place::

    STARTING --ready--> SPARE --activate--> IDLE <--send/finished--> BUSY
        |                 |                  |                      |
        +-------------- stop(...) ---------- + ---------------------+--> RETIRING | KILLING

There is one way to end a worker, ``stop``: ask (a ``Stop`` message, or SIGTERM, which
makes it dump its stack), wait a grace period, then SIGKILL; the sentinel tells the
supervisor to ``reap`` it. Timeouts, retirements, cancels, limits and shutdown all go
through it (trio's ``deliver_cancel`` policy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import forkserver, resource_tracker
from multiprocessing.context import BaseContext

import psutil

from ocrpool.pool.blame import Death
from ocrpool.pool.protocol import (
    Frames,
    FromWorker,
    Garbled,
    Job,
    Outcome,
    Spilled,
    Stop,
    ToWorker,
    WorkerSpec,
)
from ocrpool.pool.worker import worker_main
from ocrpool.processes import MB, read_tail
from ocrpool.stats import ExitCause, WorkerInfo, WorkerState

log = logging.getLogger("ocrpool")

_ALLOWED = {
    WorkerState.STARTING: {WorkerState.SPARE, WorkerState.KILLING},
    WorkerState.SPARE: {WorkerState.IDLE, WorkerState.RETIRING, WorkerState.KILLING},
    WorkerState.IDLE: {WorkerState.BUSY, WorkerState.RETIRING, WorkerState.KILLING},
    WorkerState.BUSY: {WorkerState.IDLE, WorkerState.KILLING},
    WorkerState.RETIRING: {WorkerState.KILLING},
    WorkerState.KILLING: set(),
}


PIPE_SAFE_BYTES = 32 * 1024
"""Messages up to this size fit a worker's socket buffer (about 200 kB on Linux) even
with two jobs and a ``Stop`` waiting in it, so sending one never blocks."""


def spills(source: object) -> bool:
    """Whether a job's input goes to its worker through a file (bytes over
    ``PIPE_SAFE_BYTES``)."""
    return isinstance(source, bytes) and len(source) > PIPE_SAFE_BYTES


class Ask(enum.Enum):
    """How ``stop`` first asks a worker to end."""

    MESSAGE = "message"
    """``Stop``: close the engine and exit (a worker with no job in hand)."""
    SIGTERM = "sigterm"
    """The worker dumps its Python stack and dies (a job in hand)."""
    NOTHING = "nothing"
    """SIGKILL at once (a runaway, or a start that will never finish)."""


_LISTENER = len("/listener-12345678")
"""What multiprocessing adds to its temp folder's path for the fork server's socket."""
_SOCKET_PATH_MAX = 107
"""The longest path of a Unix socket (``sun_path`` holds 108 bytes with its NUL)."""


def process_context(start_method: str) -> BaseContext:
    """Where workers come from. ``forkserver``: forked from a server process that has
    imported the worker's modules but never an engine, so a start costs a fork, not an
    interpreter; ``spawn``: a fresh interpreter each time, also what a fork server falls
    back to when multiprocessing's temp folder is too long a path for its socket (under
    a cluster job's long ``TMPDIR``), where Python before 3.14 fails every start."""
    if start_method == "forkserver":
        temp = multiprocessing.util.get_temp_dir()  # the folder the socket goes in
        if len(os.fsencode(temp)) + _LISTENER > _SOCKET_PATH_MAX:
            log.warning(
                "the temp folder %s is too long a path for the fork server's socket: "
                "workers start as new interpreters instead (slower starts); a shorter "
                "TMPDIR avoids it",
                temp,
            )
            start_method = "spawn"
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(["ocrpool.pool.worker"])
    return context


class WorkerHandle:
    """One worker process. Jobs are not its business: the lease book records what it
    holds, and the supervisor tells it (``send``, ``finished``, ``declined``) what changed."""

    def __init__(
        self,
        context: BaseContext,
        spec: WorkerSpec,
        quota: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stderr_path = spec.stderr_path
        self._clock = clock
        self.conn, child_conn = context.Pipe(duplex=True)
        self._frames = Frames(self.conn.fileno())
        self.process = context.Process(  # type: ignore[attr-defined]
            target=worker_main, args=(child_conn, spec), name="ocrpool-worker", daemon=True
        )
        try:
            with _thawing_start_helpers(context):
                self.process.start()  # the fork server may be gone: this raises
        except BaseException:
            self.conn.close()
            raise
        finally:
            child_conn.close()
        self.pid: int = self.process.pid
        self.started_at = clock()
        self.state = WorkerState.STARTING
        self.quota = quota
        self.taken = 0
        """Jobs sent to this worker: never more than ``quota``."""
        self.jobs = 0
        """Jobs it finished."""
        self.rss_mb: float | None = None
        self.warm_rss_mb: float | None = None
        self.job_s: float | None = None
        """How long its jobs take, a moving average (recent jobs weigh most)."""
        self.due: ExitCause | None = None
        """Why this worker takes no more jobs and retires once its hands are empty."""
        self.end_cause: ExitCause | None = None
        """Why the supervisor is ending it (set by ``stop``, before any signal)."""
        self.sent_kill = False
        """Whether the supervisor SIGKILLed it: a SIGKILL exit it did not send came from
        outside."""
        self.frozen = False
        """It was stopped (SIGSTOP) when the supervisor gave up waiting for it."""
        self.start_error: str | None = None
        self.refused_option: str | None = None
        """The option its engine refused at start (``StartFailed.option``)."""
        self.kill_deadline: float | None = None
        self.aimed_at: int | None = None
        """The job a stop for its timeout or its cancel was aimed at: one that started
        after it, in the moment before the signal landed, is not to pay for it."""
        self.readable = True
        """False once reading the pipe hit EOF: everything the worker wrote has been read."""
        self.writable = True
        """False once a send failed: the worker is gone, but what it wrote may be unread."""
        self._psutil = _probe(self.pid)

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
    def warm(self) -> bool:
        """Its engine passed the warm-up (it said Ready)."""
        return self.warm_rss_mb is not None

    def ready(self, rss_mb: float) -> bool:
        """A ``Ready`` arrived: the engine is warm. False if the worker is already ending."""
        if self.state is not WorkerState.STARTING:
            return False
        self._become(WorkerState.SPARE)
        self.warm_rss_mb = self.rss_mb = rss_mb
        return True

    def start_failed(self, error: str, option: str | None) -> None:
        """A ``StartFailed`` arrived: the worker exits next; keep its reason."""
        self.start_error = error
        self.refused_option = option

    def activate(self) -> None:
        self._become(WorkerState.IDLE)

    def can_take(self, held: int, depth: int) -> bool:
        """Whether a job may be sent while it holds ``held`` jobs: only at ``depth``,
        never past the quota, never to a worker that is due to retire."""
        return (
            self.active
            and self.writable
            and self.due is None
            and held == depth
            and (self.quota is None or self.taken < self.quota)
        )

    def send(self, job: Job) -> bool:
        """Send ``job``; False if the worker is gone (the job is not in its hands). Bytes
        larger than a pipe holds go through a file, so this never blocks."""
        if isinstance(job.source, bytes) and spills(job.source):
            spilled = self._spill(job.job_id, job.source)
            if spilled is None and self.state is WorkerState.BUSY:
                return False  # in the pipe they would wait behind a job that may not end
            job = dataclasses.replace(job, source=spilled or job.source)
        if not self._send(job):
            if isinstance(job.source, Spilled):
                self.drop_spill(job.job_id)
            return False
        self.taken += 1
        if self.state is WorkerState.IDLE:
            self._become(WorkerState.BUSY)
        return True

    def finished(self, outcome: Outcome, empty: bool) -> None:
        """A job ended on it; ``empty``: it holds nothing more. A job answered with its
        pages' count (``Outcome.pages``) never reached the engine: it counts neither
        against the quota nor in how long a job takes."""
        self.rss_mb = outcome.rss_mb
        if outcome.pages is None:
            self.jobs += 1
            elapsed = outcome.elapsed_s
            self.job_s = elapsed if self.job_s is None else 0.7 * self.job_s + 0.3 * elapsed
        else:
            self.taken -= 1
        if self.due is None and outcome.over_limit:
            self.due = ExitCause.SOFT_RSS
        if self.due is None and self.quota is not None and self.jobs >= self.quota:
            self.due = ExitCause.MAX_JOBS
        self._idle_if(empty)

    def declined(self, empty: bool) -> None:
        """It refused a job (past its soft limit), which never counted against its quota."""
        self.taken -= 1
        self.due = self.due or ExitCause.SOFT_RSS
        self._idle_if(empty)

    def _idle_if(self, empty: bool) -> None:
        if self.state is WorkerState.BUSY and empty:
            self._become(WorkerState.IDLE)

    def stop(
        self,
        cause: ExitCause,
        ask: Ask,
        grace: float,
        reason: str | None = None,
        *,
        aimed_at: int | None = None,
    ) -> None:
        """End the worker: ask as ``ask`` says, SIGKILL after ``grace`` seconds. A stop
        for a timeout first notes whether someone else had frozen it (SIGSTOP)."""
        if self.end_cause is not None and ask is not Ask.NOTHING:
            return  # already on its way out; only a harder stop may overtake
        if self.end_cause is None and cause in (ExitCause.TIMEOUT, ExitCause.START_FAILED):
            self.frozen = self._is_stopped()
        if self.end_cause is None:
            self.aimed_at = aimed_at
        self.end_cause = cause
        self.start_error = self.start_error or reason
        if ask is Ask.MESSAGE:
            self._become(WorkerState.RETIRING)
            if not self._send(Stop()):
                ask = Ask.NOTHING
        elif self.state is not WorkerState.KILLING:
            self._become(WorkerState.KILLING)
        if ask is Ask.NOTHING:
            self._signal(signal.SIGKILL)
            self.kill_deadline = None
            return
        if ask is Ask.SIGTERM:
            self._signal(signal.SIGTERM)
        self.kill_deadline = self._clock() + grace

    def escalate(self, now: float) -> None:
        """SIGKILL a worker whose grace period is over."""
        if self.kill_deadline is not None and now >= self.kill_deadline:
            self._signal(signal.SIGKILL)
            self.kill_deadline = None

    def reap(self) -> int | None:
        """The exit status, once the sentinel has fired (``None`` if it cannot be had).

        The sentinel fires when the child's descriptors close, a moment before the kernel
        makes it waitable, so this blocks briefly rather than polling once. A child still
        running then (its sentinel closed early) is SIGKILLed: it is lost to the pool.
        """
        try:
            self.process.join(timeout=5.0)
            if self.process.exitcode is None:
                self._signal(signal.SIGKILL)
                self.process.join(timeout=5.0)
            exitcode: int | None = self.process.exitcode
        except (OSError, ValueError, EOFError):
            return None
        return exitcode

    def death(self, exitcode: int | None, started_job: int | None) -> Death:
        """The facts of its end, for ``blame.judge``; ``started_job``: the id of the job it
        had started, if any."""
        return Death(
            end_cause=self.end_cause,
            exitcode=exitcode,
            sent_kill=self.sent_kill,
            warm=self.warm,
            started_job=started_job is not None,
            frozen=self.frozen,
            aimed_elsewhere=self.aimed_at not in (None, started_job),
        )

    def release(self) -> None:
        """Free the pipe, the process object and the log of a reaped worker."""
        self.conn.close()
        with contextlib.suppress(ValueError):  # still running: not ours to wait for any more
            self.process.close()
        with contextlib.suppress(OSError):
            os.unlink(self.stderr_path)

    # ---- pipe and probes ----------------------------------------------------------

    @property
    def sentinel(self) -> int:
        sentinel: int = self.process.sentinel
        return sentinel

    def _spill(self, job_id: int, data: bytes) -> Spilled | None:
        """Write ``data`` next to the worker logs (the pool's own folder, made again if a
        temp cleaner removed it) for the worker to read; ``None`` if that fails (a full
        disk: the bytes then go through the pipe to an idle worker, which reads them)."""
        folder = os.path.dirname(self.stderr_path)
        path = self._spill_path(job_id)
        try:
            os.makedirs(folder, 0o700, exist_ok=True)
            with open(path + ".part", "wb") as handle:
                handle.write(data)
            os.replace(path + ".part", path)
        except OSError:
            return None
        return Spilled(path)

    def drop_spill(self, job_id: int) -> None:
        """Remove the file a job's bytes went to this worker through, which it ended
        without reading (the worker removes it as it reads it; a retry writes a new one):
        else a job cancelled or failed after that lived on in the pool's folder."""
        with contextlib.suppress(OSError):
            os.unlink(self._spill_path(job_id))

    def _spill_path(self, job_id: int) -> str:
        return os.path.join(os.path.dirname(self.stderr_path), f"job-{job_id}.bin")

    def _send(self, message: ToWorker) -> bool:
        try:
            self.conn.send(message)
        except (OSError, EOFError, ValueError):
            self.writable = False
            return False
        return True

    def receive_ready(self) -> list[FromWorker]:
        """The messages complete after one read of the pipe, once it is known to be
        readable; an incomplete one waits for the next (never for a frozen worker).

        Bytes that are not a message end the reading and the worker, which can no longer
        be understood: its end is judged as a crash. The worker's exit tells the rest.
        """
        try:
            return self._frames.read()
        except Garbled as garbled:
            log.error("worker %d: %s; killing it", self.pid, garbled)
            self.readable = False
            cause = ExitCause.CRASH if self.warm else ExitCause.START_FAILED
            self.stop(cause, Ask.NOTHING, 0.0, str(garbled))
            return garbled.messages
        except (OSError, EOFError):
            self.readable = False
            return []

    def has_unread(self) -> bool:
        """Bytes (or its end) wait in its pipe. A process stopped (SIGSTOP, Ctrl-Z) past a
        job's deadline wakes to find the job's answer there, sent in time."""
        try:
            return self.readable and self.conn.poll(0)
        except (OSError, EOFError):
            return False

    def receive_rest(self) -> list[FromWorker]:
        """Every message still in the pipe of a worker that exited, up to EOF."""
        messages: list[FromWorker] = []
        try:
            while self.readable and self.conn.poll():
                messages += self._frames.read()
        except Garbled as garbled:
            messages += garbled.messages
            self.readable = False
        except (OSError, EOFError):
            self.readable = False
        return messages

    def sample_rss(self) -> float | None:
        try:
            rss: int = self._psutil.memory_info().rss if self._psutil else 0
        except (psutil.Error, OSError):  # OSError: this process is out of descriptors
            return None
        if rss:  # a process that is already exiting reads as 0
            self.rss_mb = rss / MB
        return self.rss_mb

    def _is_stopped(self) -> bool:
        return _stopped(self._psutil)

    def stderr_tail(self) -> str:
        return read_tail(self.stderr_path)

    def info(self, now: float) -> WorkerInfo:
        return WorkerInfo(self.pid, self.state, self.jobs, self.rss_mb, now - self.started_at)

    def _signal(self, signum: signal.Signals) -> None:
        self.sent_kill = self.sent_kill or signum is signal.SIGKILL
        with contextlib.suppress(OSError):
            os.kill(self.pid, signum)


FORK_CHECK_S = 1.0
"""How often a start that waits on the fork server checks that it is not stopped."""


@contextlib.contextmanager
def _thawing_start_helpers(context: BaseContext) -> Iterator[None]:
    """While a worker starts, SIGKILL the fork server, or multiprocessing's resource
    tracker, if it is stopped (SIGSTOP).

    ``Process.start`` blocks until the fork server tells the child's pid, under the
    supervisor's lock: a frozen server would freeze the pool. Killed, it ends the wait
    with EOF (a worker lost while forked) and multiprocessing starts a new one; its
    workers die with it, which costs their jobs nothing (``blame.py``). Each start, with
    either start method, also writes a probe to the resource tracker's pipe: a frozen
    tracker reads none, and once its pipe is full (some 5,000 starts) the write blocks.
    Killed, it is started again by the next probe; it holds nothing of the pool's, but
    the process's own shared memory and semaphores it tracked are forgotten (Python
    warns of that), a lesser harm than a pool stopped for ever. One merely slow is left
    alone.
    """
    with_server = context.get_start_method() == "forkserver"
    done = threading.Event()

    def watch() -> None:
        while not done.wait(FORK_CHECK_S):
            server = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
            tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
            helpers = (
                ("fork server", server if with_server else None),
                ("resource tracker", tracker),
            )
            for name, pid in helpers:
                if pid is not None and _stopped(_probe(pid)):
                    log.error("the %s %d is stopped; killing it", name, pid)
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)

    watcher = threading.Thread(target=watch, name="ocrpool-fork-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()


def _stopped(process: psutil.Process | None) -> bool:
    """Whether ``process`` is stopped (SIGSTOP, a debugger); False once it is gone."""
    try:
        status = process.status() if process else ""
    except (psutil.Error, OSError):
        return False
    return status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


def _probe(pid: int) -> psutil.Process | None:
    """psutil's view of a worker, or None if it is already gone (killed right after
    its fork): its exit is then the supervisor's next event, like any other."""
    try:
        return psutil.Process(pid)
    except (psutil.Error, OSError):  # OSError: out of descriptors, say
        return None
