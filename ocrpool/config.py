"""The pool's settings, their defaults, and their validation in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ocrpool.engines import resolve_engine


def _default_workers() -> int:
    """One single-threaded engine per core: in the tuning study 2 workers kept 1.93 of 2
    cores busy and 3 workers 1.94, for 480 MB more (benchmarks/results/tuning.md)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


@dataclass(frozen=True)
class PoolConfig:
    """See ``OcrPool`` for what each setting means."""

    workers: int = field(default_factory=_default_workers)
    max_jobs_per_worker: int | None = 50
    max_rss_mb: float | None = 1024.0
    hard_rss_mb: float | None = None
    rss_relative: bool = False
    job_timeout: float | None = 120.0
    retries: int = 1
    spares: int = 1
    engine: str = "aspose"
    engine_options: dict[str, Any] = field(default_factory=dict)
    start_timeout: float = 120.0
    max_start_failures: int = 3
    max_recycles_at_once: int = 1
    recycle_jitter: float = 0.1
    kill_grace: float = 2.0
    retire_grace: float = 10.0
    rss_sample_interval: float = 0.2
    max_in_flight: int | None = None
    prefetch_below_s: float = 0.05

    def __post_init__(self) -> None:
        _require(self.workers >= 1, "workers must be at least 1")
        _require(self.spares >= 0, "spares must be 0 or more")
        _require(self.retries >= 0, "retries must be 0 or more")
        _require(self.prefetch_below_s >= 0, "prefetch_below_s must be 0 or more")
        _require(self.max_start_failures >= 1, "max_start_failures must be at least 1")
        _require(self.max_recycles_at_once >= 1, "max_recycles_at_once must be at least 1")
        _require(0.0 <= self.recycle_jitter < 1.0, "recycle_jitter must be in [0, 1)")
        for name in ("job_timeout", "max_rss_mb", "hard_rss_mb"):
            value = getattr(self, name)
            _require(value is None or value > 0, f"{name} must be positive or None")
        _require(
            self.max_jobs_per_worker is None or self.max_jobs_per_worker >= 1,
            "max_jobs_per_worker must be at least 1 or None",
        )
        for name in ("start_timeout", "kill_grace", "retire_grace", "rss_sample_interval"):
            _require(getattr(self, name) > 0, f"{name} must be positive")
        soft, hard = self.max_rss_mb, self.effective_hard_rss_mb
        _require(
            soft is None or hard is None or hard >= soft, "hard_rss_mb must not be below max_rss_mb"
        )
        _require(
            self.max_in_flight is None or self.max_in_flight >= 1, "max_in_flight must be >= 1"
        )
        resolve_engine(self.engine)

    @property
    def effective_hard_rss_mb(self) -> float | None:
        """The hard limit: as given, else twice the soft limit, else none."""
        if self.hard_rss_mb is not None:
            return self.hard_rss_mb
        return None if self.max_rss_mb is None else 2 * self.max_rss_mb

    @property
    def window(self) -> int:
        """How many jobs ``imap`` keeps submitted at once."""
        return self.max_in_flight or 3 * (self.workers + self.spares)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
