"""Messages between the supervisor and a worker, one duplex pipe per worker.

Supervisor -> worker: ``Job``, ``Stop``.  Worker -> supervisor: ``Ready`` (engine
started and warm) or ``StartFailed``; then per job ``Ack`` (the job is in the engine's
hands) and ``Outcome``. A job sent but never acknowledged was never started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ocrpool.engines.base import Source
from ocrpool.errors import OcrPoolError
from ocrpool.results import Recognition


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a spawned worker needs to start."""

    engine: str
    engine_options: dict[str, Any]
    parent_pid: int
    stderr_path: str


@dataclass(frozen=True)
class Job:
    job_id: int
    source: Source


@dataclass(frozen=True)
class Stop:
    """Close the engine and exit; sent only to an idle worker."""


@dataclass(frozen=True)
class Ready:
    pid: int
    rss_mb: float
    startup_s: float


@dataclass(frozen=True)
class StartFailed:
    error: str
    traceback: str


@dataclass(frozen=True)
class Ack:
    job_id: int


@dataclass(frozen=True)
class Outcome:
    """The end of one job: ``recognition`` or ``error``, and the worker's RSS after it."""

    job_id: int
    recognition: Recognition | None
    error: OcrPoolError | None
    rss_mb: float
    elapsed_s: float


ToWorker = Job | Stop
FromWorker = Ready | StartFailed | Ack | Outcome
