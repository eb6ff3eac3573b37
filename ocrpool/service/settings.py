"""What one ``ocrpool serve`` process is told: where to listen, its bounds, and its pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocrpool.formats import DEFAULT_MAX_PIXELS
from ocrpool.pool.config import check_types

_MB = 1024 * 1024
_WAITS = ("body_timeout_s", "drain_timeout_s")
"""The durations the service waits for (the others are only compared with the clock)."""


@dataclass(frozen=True)
class ServiceSettings:
    pool: dict[str, Any] = field(default_factory=dict)
    """``OcrPool`` keyword arguments."""
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    """Required as ``Authorization: Bearer <token>`` on every route but the probes."""
    allow_path_prefix: str | None = None
    """Requests may name server-side files inside it (``?path=``); ``None``: bytes only."""
    max_body_mb: float = 32.0
    body_timeout_s: float = 60.0
    """How long a request's body may take to arrive: its queue slot is held meanwhile."""
    max_queue: int = 64
    """Jobs accepted and unfinished (uploading, queued or running); more get 429."""
    max_pages: int = 1000
    """Pages one request's inputs may hold in all; more get 413 before any job is queued
    (each page is a job of its own, and the queue counts inputs)."""
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    result_ttl_s: float = 600.0
    """How long a finished job's result is kept for ``GET /v1/jobs/{id}``."""
    max_results: int = 1000
    max_results_mb: float = 256.0
    drain_timeout_s: float = 30.0
    """On SIGTERM: how long accepted jobs may take before they fail with ``PoolClosed``."""
    unhealthy_after_s: float = 120.0
    """``/healthz`` fails once the pool has been broken (engines that cannot start, rebuilt
    in the background meanwhile) for longer than this."""
    access_log: bool = False
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the service (CORS); none by default."""

    def __post_init__(self) -> None:
        check_types(self, durations=_WAITS, sizes_mb=("max_body_mb", "max_results_mb"))
        for name in (
            "max_body_mb",
            "body_timeout_s",
            "result_ttl_s",
            "max_results_mb",
            "unhealthy_after_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("max_queue", "max_pages", "max_results"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.drain_timeout_s < 0:
            raise ValueError("drain_timeout_s must be 0 or more")
        if self.max_pixels is not None and self.max_pixels < 0:  # else every image is over
            raise ValueError("max_pixels must be 0 or more (0: no limit)")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be in 0..65535")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * _MB)

    @property
    def max_results_bytes(self) -> int:
        return int(self.max_results_mb * _MB)
