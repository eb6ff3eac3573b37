"""The errors a worker's end gives: its job's (``lost_job_error``) or, for a start that
failed, the pool's (``start_failure_error``). Pure functions; ``blame.py`` decides which
applies."""

from __future__ import annotations

from ocrpool.errors import (
    EngineConfigError,
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

DOCTOR_HINT = "Run `ocrpool doctor` to check the engine's runtime."


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
    pid: int | None,
    detail: str | None,
    exitcode: int | None,
    stderr_tail: str,
    *,
    attempt: int,
    of: int,
) -> EngineStartError:
    """The error of the ``attempt``-th failed start in a row (the pool breaks at ``of``)."""
    who = "a worker" if pid is None else f"worker {pid}"
    return EngineStartError(
        f"{who} could not start the {engine!r} engine ({attempt} of {of} attempts): "
        f"{detail or describe_exit(exitcode)}. {DOCTOR_HINT}",
        attempts=attempt,
        exitcode=exitcode,
        stderr_tail=stderr_tail,
    )


def options_refused_error(
    engine: str, detail: str | None, option: str, exitcode: int | None, stderr_tail: str
) -> EngineConfigError:
    """The pool's error when a worker's engine refused the options it was started with."""
    return EngineConfigError(
        f"the {engine!r} engine refused its options: {detail}",
        option=option,
        attempts=1,
        exitcode=exitcode,
        stderr_tail=stderr_tail,
    )
