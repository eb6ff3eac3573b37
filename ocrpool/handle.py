"""The supervisor's handle on one worker process: spawn, talk, stop, reap.

Only the supervisor thread touches a handle. Stopping escalates by policy (trio's
``deliver_cancel``): SIGTERM (the worker dumps its stack and dies), then SIGKILL once
the grace period is over; a runaway worker is SIGKILLed at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import termios
import time
from collections import deque
from multiprocessing.context import SpawnContext
from typing import TYPE_CHECKING

import psutil

from ocrpool.protocol import FromWorker, ToWorker, WorkerSpec
from ocrpool.stats import ExitCause, WorkerInfo, WorkerState
from ocrpool.worker import worker_main

if TYPE_CHECKING:
    from ocrpool.supervisor import JobRecord

_MB = 1024 * 1024
_TAIL_BYTES = 6000


class WorkerHandle:
    def __init__(self, ctx: SpawnContext, spec: WorkerSpec, quota: int | None) -> None:
        self.stderr_path = spec.stderr_path
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=worker_main, args=(child_conn, spec), name="ocrpool-worker", daemon=True
        )
        self.process.start()
        child_conn.close()
        assert self.process.pid is not None
        self.pid: int = self.process.pid
        self.started_at = time.monotonic()
        self.state = WorkerState.STARTING
        self.quota = quota
        self.jobs = 0
        self.rss_mb: float | None = None
        self.warm_rss_mb: float | None = None
        self.in_hand: deque[JobRecord] = deque()
        """Jobs sent to this worker, in order: the first may be running, a second one
        waits in its pipe (prefetch)."""
        self.last_job_s: float | None = None
        self.due: ExitCause | None = None
        """Why this worker should retire once a replacement is warm."""
        self.end_cause: ExitCause | None = None
        """Why the supervisor is ending it (set before Stop or a signal)."""
        self.start_error: str | None = None
        self.kill_deadline: float | None = None
        self.readable = True
        """False once reading the pipe hit EOF: everything the worker wrote has been read."""
        self.writable = True
        """False once a send failed: the worker is gone, but what it wrote may still be unread."""
        self._psutil = psutil.Process(self.pid)

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    @property
    def job(self) -> JobRecord | None:
        """The job this worker is on (or will start next)."""
        return self.in_hand[0] if self.in_hand else None

    @property
    def active(self) -> bool:
        return self.state in (WorkerState.IDLE, WorkerState.BUSY)

    def send(self, message: ToWorker) -> bool:
        """Send ``message``; ``False`` when the worker is already gone."""
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

    def receive(self) -> list[FromWorker]:
        """Every message still in the pipe of a worker that exited, up to EOF."""
        messages: list[FromWorker] = []
        try:
            while self.readable and self.conn.poll():
                messages.append(self.conn.recv())
        except (OSError, EOFError):
            self.readable = False
        return messages

    def terminate(self, cause: ExitCause, grace: float) -> None:
        """SIGTERM now, SIGKILL after ``grace`` seconds (see ``escalate``)."""
        self._begin_stop(cause, signal.SIGTERM)
        self.kill_deadline = time.monotonic() + grace

    def kill(self, cause: ExitCause) -> None:
        self._begin_stop(cause, signal.SIGKILL)
        self.kill_deadline = None

    def escalate(self, now: float) -> None:
        if self.kill_deadline is not None and now >= self.kill_deadline:
            self._signal(signal.SIGKILL)
            self.kill_deadline = None

    def sample_rss(self) -> float | None:
        try:
            rss: int = self._psutil.memory_info().rss
        except psutil.Error:
            return None
        if rss:  # a process that is already exiting reads as 0
            self.rss_mb = rss / _MB
        return self.rss_mb

    def stderr_tail(self) -> str:
        try:
            with open(self.stderr_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - _TAIL_BYTES))
                return handle.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def wait(self) -> int | None:
        """The exit status, once the sentinel has fired.

        The sentinel fires when the child's descriptors close, a moment before the kernel
        makes it waitable, so this blocks briefly rather than polling once.
        """
        self.process.join(timeout=5.0)
        return self.process.exitcode

    def release(self) -> None:
        """Free the pipe, the process object and the log file of an exited worker."""
        self.conn.close()
        self.process.close()
        with contextlib.suppress(OSError):
            os.unlink(self.stderr_path)

    def info(self, now: float) -> WorkerInfo:
        return WorkerInfo(self.pid, self.state, self.jobs, self.rss_mb, now - self.started_at)

    def _begin_stop(self, cause: ExitCause, signum: signal.Signals) -> None:
        self.end_cause = cause
        self.state = WorkerState.KILLING
        self._signal(signum)

    def _signal(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)
