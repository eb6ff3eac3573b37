"""What the pool reports about itself: life-cycle states, exit causes and snapshots."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PoolState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    CLOSING = "closing"
    """``close()``: no new jobs; queued ones are finished, then workers retire."""
    STOPPING = "stopping"
    """``shutdown(cancel_pending=True)``: queued jobs fail, running ones are stopped."""
    CLOSED = "closed"
    BROKEN = "broken"
    """Engines could not start (``EngineStartError``), every Ray actor is gone, or the pool's
    own thread failed: every job fails with that error."""


class WorkerState(str, enum.Enum):
    STARTING = "starting"
    """Spawned; loading and warming its engine."""
    SPARE = "spare"
    """Warm, waiting to replace a retiring worker."""
    IDLE = "idle"
    BUSY = "busy"
    RETIRING = "retiring"
    """Told to close its engine and exit after its last result."""
    KILLING = "killing"
    """Being stopped by signal (timeout, hard memory limit, shutdown)."""


class ExitCause(str, enum.Enum):
    MAX_JOBS = "max_jobs"
    SOFT_RSS = "soft_rss"
    HARD_RSS = "hard_rss"
    TIMEOUT = "timeout"
    CRASH = "crash"
    KILLED = "killed"
    """SIGKILL (or SIGTERM, SIGHUP, SIGINT) that the pool did not send: the OOM killer, an
    operator, a test."""
    CANCELLED = "cancelled"
    """Its running job was cancelled with ``OcrPool.cancel(future, kill=True)``."""
    START_FAILED = "start_failed"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class WorkerExit:
    """One worker's end: why, and what it had become."""

    pid: int | None
    """``None`` for a worker that died while it was forked, before its pid reached the
    pool (an outside SIGKILL at that moment)."""
    cause: ExitCause
    rss_mb: float | None
    jobs: int
    age_s: float
    exitcode: int | None
    """``None`` while unknown; negative: killed by that signal number."""

    def __str__(self) -> str:
        rss = "?" if self.rss_mb is None else f"{self.rss_mb:.0f}"
        who = "a worker lost while forked" if self.pid is None else f"worker {self.pid}"
        return (
            f"{who} exited: {self.cause.value} (exit {self.exitcode}, "
            f"{self.jobs} jobs, RSS {rss} MB, {self.age_s:.1f}s old)"
        )


@dataclass(frozen=True)
class WorkerInfo:
    pid: int
    state: WorkerState
    jobs: int
    rss_mb: float | None
    age_s: float


@dataclass(frozen=True)
class PageProgress:
    """The documents a pool split into page jobs so far (``ocrpool/pool/documents.py``):
    for progress displays, which count a long document's pages, not the document."""

    documents: int = 0
    documents_done: int = 0
    """Split documents whose result is in (whole, partial, failed or cancelled)."""
    pages: int = 0
    pages_done: int = 0
    """Pages of split documents whose page job ended, either way."""


@dataclass(frozen=True)
class PoolStats:
    state: PoolState
    workers: tuple[WorkerInfo, ...]
    exits: dict[str, int]
    """Worker exits by cause (``ExitCause`` values)."""
    submitted: int
    completed: int
    failed: int
    retries: int
    quarantined: tuple[str, ...]
    """Inputs that failed after every retry (crashes, memory kills)."""
    queued: int
    crash_streak: int = 0
    """Worker deaths from outside (blame.py) since a job last finished: each one in a row
    backs off the next start a little more."""
    restart_delay_s: float = 0.0
    """How long the next worker start still waits (back-off after deaths or failed starts)."""
    pages: PageProgress = field(default_factory=PageProgress)
    """The documents this pool split into page jobs, and their pages."""

    @property
    def ready(self) -> int:
        """Workers serving jobs now (idle or busy)."""
        return sum(w.state in (WorkerState.IDLE, WorkerState.BUSY) for w in self.workers)

    @property
    def recycles(self) -> int:
        """Planned retirements: by job count or by memory."""
        return sum(self.exits.get(c.value, 0) for c in (ExitCause.MAX_JOBS, ExitCause.SOFT_RSS))
