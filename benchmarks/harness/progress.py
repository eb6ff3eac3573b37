"""What a scenario process tells the benchmark as it goes: small frozen messages on a pipe.

::

    scenario process                                   benchmark (parent)
    warm up the engine or the pool  -- Ready -------->  start the timed window
    run the jobs, batch records     -- Jobs --------->  count jobs done (RSS vs jobs)
    last job done                   -- Done --------->  stop the window
    (or)                            -- Failed ------->  report the error
    shut down, exit                                     reap; kill the tree on timeout

Times are ``time.monotonic()`` readings, which on Linux share one clock across processes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

FLUSH_INTERVAL_S = 0.05
"""How often job records are sent: often enough for the 100 ms RSS samples, rarely enough
that sending them does not slow down no-op jobs."""


@dataclass(frozen=True)
class JobRecord:
    """One finished job: its input, when it was handed to the pool and when its result came
    back, and a digest of the text it returned (``None``: the job failed)."""

    source: str
    submitted: float
    finished: float
    digest: str | None
    worker_pid: int | None

    @property
    def ok(self) -> bool:
        return self.digest is not None


def text_digest(text: str) -> str:
    """A short fingerprint of a job's text: scenarios that read an input alike agree on it."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Ready:
    """The engine or pool is warm: the timed window starts. ``cpu_s`` is the tree's CPU so far."""

    at: float
    cpu_s: float


@dataclass(frozen=True)
class Jobs:
    records: tuple[JobRecord, ...]


@dataclass(frozen=True)
class Done:
    """The last job came back. ``exits`` is the pool's own count of worker exits by cause,
    if it keeps one."""

    at: float
    cpu_s: float
    exits: dict[str, int] | None = None


@dataclass(frozen=True)
class Failed:
    """The scenario could not run (for example, the engine would not start)."""

    message: str


Message = Ready | Jobs | Done | Failed


class Reporter:
    """The scenario side of the pipe: sends ``Ready``/``Done`` at once and batches job records."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._pending: list[JobRecord] = []
        self._last_flush = time.monotonic()

    def ready(self, cpu_s: float) -> None:
        self._connection.send(Ready(at=time.monotonic(), cpu_s=cpu_s))
        self._last_flush = time.monotonic()

    def job(self, record: JobRecord) -> None:
        self._pending.append(record)
        if record.finished - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._connection.send(Jobs(tuple(self._pending)))
            self._pending.clear()
        self._last_flush = time.monotonic()

    def done(self, cpu_s: float, exits: dict[str, int] | None = None) -> None:
        self.flush()
        self._connection.send(Done(at=time.monotonic(), cpu_s=cpu_s, exits=exits))

    def failed(self, message: str) -> None:
        self.flush()
        self._connection.send(Failed(message))
