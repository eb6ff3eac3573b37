"""Errors of the Ray backend. Like every ocrpool error they are plain data: a caller
catches the type and reads the fields, and a per-input one travels inside an
``OcrResult``."""

from __future__ import annotations

from ocrpool.errors import OcrPoolError

INSTALL_RAY = "pip install 'ocrpool[ray]'"


class ScaleOutError(OcrPoolError):
    """Base of the Ray backend's errors."""


class RayNotInstalled(ScaleOutError):
    """The Ray backend was asked for, but Ray cannot be imported; ``install`` says how to
    get it."""

    install: str = INSTALL_RAY

    def __init__(self, reason: str) -> None:
        super().__init__(f"the Ray backend needs Ray ({reason}): {INSTALL_RAY}")


class RayUnavailable(ScaleOutError):
    """Ray could not be started or reached at ``address`` (``None``: Ray's default); the
    message carries Ray's own reason (no cluster there, Ray Client not installed, ...)."""

    address: str | None = None


class ActorsNotReady(ScaleOutError):
    """The actors were not all placed and warm within ``waited_s``: the cluster lacks the
    CPUs or memory they declare (``num_cpus``, ``memory_mb`` each), or is unreachable."""

    actors: int = 0
    num_cpus: int = 0
    memory_mb: float = 0.0
    waited_s: float = 0.0


class ActorLost(ScaleOutError):
    """One input's result: its actor was lost (process, node or connection) on each of
    ``attempts`` dispatches, the last time with ``cause``. Only this input is failed."""

    attempts: int = 0
    cause: str = ""
