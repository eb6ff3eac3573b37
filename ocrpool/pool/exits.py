"""Why a worker ended, and the error its job gets: pure functions of what was observed.

The supervisor records why it stopped a worker (``end_cause``) before it signals it;
anything else that ends a worker is classified from its exit status. Tests call these
without spawning a process.
"""

from __future__ import annotations

import signal

from ocrpool.errors import (
    EngineStartError,
    JobCancelled,
    JobTimeout,
    MemoryLimitExceeded,
    OcrPoolError,
    PoolClosed,
    WorkerCrashed,
)
from ocrpool.processes import describe_exit, signal_name
from ocrpool.stats import ExitCause

RETRYABLE = frozenset({ExitCause.CRASH, ExitCause.KILLED, ExitCause.HARD_RSS})
"""Causes that say nothing about the input: its job is tried again on a fresh worker."""
PLANNED = frozenset({ExitCause.MAX_JOBS, ExitCause.SOFT_RSS, ExitCause.SHUTDOWN})
"""Causes the pool chose; their logs are not worth quoting."""
DOCTOR_HINT = "Run `ocrpool doctor` to check the engine's runtime."


RETIREMENTS = frozenset({ExitCause.MAX_JOBS, ExitCause.SOFT_RSS})
"""Planned ends of a healthy worker, which closes itself: an outside SIGKILL that cuts one
short is counted as the kill it was (an outside kill during shutdown stays ``shutdown``)."""


def classify_exit(
    end_cause: ExitCause | None, exitcode: int | None, starting: bool, *, sent_kill: bool = False
) -> ExitCause:
    """The cause the supervisor recorded, else what the exit status says: a SIGKILL it
    did not send (``sent_kill``) is an outside kill (the OOM killer, an operator), also
    when it cut short a retirement; anything else a crash, or a failed start when the
    worker never became ready."""
    outside_kill = exitcode == -signal.SIGKILL and not sent_kill
    if end_cause is not None and not (end_cause in RETIREMENTS and outside_kill):
        return end_cause
    if exitcode == -signal.SIGKILL:
        return ExitCause.KILLED
    return ExitCause.START_FAILED if starting else ExitCause.CRASH


def lost_job_error(
    cause: ExitCause,
    label: str,
    pid: int,
    exitcode: int | None,
    stderr_tail: str,
    *,
    timeout: float | None,
    rss_mb: float | None,
    limit_mb: float | None,
) -> OcrPoolError:
    """The error of a job that was running on a worker that ended for ``cause``."""
    if cause is ExitCause.TIMEOUT:
        return JobTimeout(
            f"{label}: no result after {timeout}s; worker {pid} stopped",
            timeout=timeout,
            stderr_tail=stderr_tail,
        )
    if cause is ExitCause.CANCELLED:
        return JobCancelled(f"{label}: cancelled while running; worker {pid} stopped")
    if cause is ExitCause.SHUTDOWN:
        return PoolClosed(f"{label}: stopped at shutdown")
    if cause is ExitCause.HARD_RSS:
        return MemoryLimitExceeded(
            f"{label}: worker {pid} grew to {rss_mb or 0:.0f} MB, past the hard limit of "
            f"{limit_mb or 0:.0f} MB, and was killed",
            rss_mb=rss_mb,
            limit_mb=limit_mb,
            exitcode=exitcode,
            signal=signal_name(exitcode),
        )
    return WorkerCrashed(
        f"{label}: worker {pid} died ({describe_exit(exitcode)})",
        exitcode=exitcode,
        signal=signal_name(exitcode),
        stderr_tail=stderr_tail,
    )


def start_failure_error(
    engine: str,
    pid: int,
    detail: str | None,
    exitcode: int | None,
    stderr_tail: str,
    *,
    attempt: int,
    of: int,
) -> EngineStartError:
    """The error of the ``attempt``-th failed start in a row (the pool breaks at ``of``)."""
    return EngineStartError(
        f"worker {pid} could not start the {engine!r} engine ({attempt} of {of} attempts): "
        f"{detail or describe_exit(exitcode)}. {DOCTOR_HINT}",
        attempts=attempt,
        exitcode=exitcode,
        stderr_tail=stderr_tail,
    )
