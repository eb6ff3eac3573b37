"""Errors a caller can catch.

Every error crosses the process boundary as plain data: each class keeps its
fields in ``__dict__`` and passes only the message to ``Exception``, so the
default pickling (``type, args, __dict__``) rebuilds it in the supervisor.
"""

from __future__ import annotations

from typing import Any


class OcrPoolError(Exception):
    """Base of every error ocrpool raises."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.__dict__.update(fields)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the type name, the message and the fields."""
        data: dict[str, Any] = {"type": type(self).__name__, "message": self.message}
        data.update({k: v for k, v in self.__dict__.items() if not k.startswith("_")})
        return data


class InvalidInput(OcrPoolError):
    """The input cannot be read: missing, unreadable, empty, corrupt, unsupported or too large.

    Deterministic: retrying it on another worker gives the same answer, so it is never retried.
    """


class EngineError(OcrPoolError):
    """The engine failed on an input it could read. Not retried."""


class ResourceUnavailable(EngineError):
    """A setting needs an engine resource that is not on this machine (and may not be downloaded).

    ``resource`` names it; provide it locally or choose settings that work offline.
    """


class ExportFailed(EngineError):
    """The engine read the input but could not render an export asked for; ``format``
    names it. Not retried: the same input gives the same answer."""


class EmptyPages(OcrPoolError):
    """Pages came back without text and the run is strict (``ocrpool run --strict``);
    ``pages`` holds their numbers, counted from 1."""


class JobTimeout(OcrPoolError):
    """The job ran past ``job_timeout``; its worker was stopped. ``stack`` holds the
    worker's Python stack when it could be captured."""


class WorkerCrashed(OcrPoolError):
    """The worker died while running the job (``signal`` or ``exitcode`` says how)."""


class MemoryLimitExceeded(WorkerCrashed):
    """The worker's RSS passed the hard limit during the job and the supervisor killed it."""


class EngineStartError(OcrPoolError):
    """Workers could not start their engine; ``stderr_tail`` holds what the last one printed.

    Run ``ocrpool doctor`` to see which part of the engine's runtime is missing.
    """


class PoolClosed(OcrPoolError):
    """The pool is closed or shut down: the job was never run."""
