"""What the service refuses, and the one table from every error to its HTTP status.

A service error is an ``OcrPoolError`` like the pool's own, so every non-2xx response has
the same body: the error's ``to_dict()`` (type, message, fields), never a stack trace.
"""

from __future__ import annotations

from ocrpool.errors import (
    EngineError,
    EngineStartError,
    InvalidInput,
    JobCancelled,
    JobTimeout,
    OcrPoolError,
    PoolClosed,
    ResourceUnavailable,
    WorkerCrashed,
)


class ServiceError(OcrPoolError):
    """A request the service answers itself, without a job's result."""

    def headers(self) -> dict[str, str]:
        """Response headers the status calls for."""
        return {}


class BadRequest(ServiceError):
    """The request is malformed: a bad parameter, no input, a broken multipart body."""


class Unauthorized(ServiceError):
    """The service needs ``Authorization: Bearer <token>`` and did not get the right one."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class PathRefused(ServiceError):
    """A server-side path was named, and paths are off or it lies outside the allowed prefix."""

    path: str = ""


class JobNotFound(ServiceError):
    """No such job: never created, deleted, or its result expired (``--result-ttl``)."""

    id: str = ""


class NotCancellable(ServiceError):
    """The job already runs on a worker: it can no longer be cancelled."""

    id: str = ""


class BodyTooLarge(ServiceError):
    """The request body is over ``--max-body-mb``."""

    limit_bytes: int = 0


class QueueFull(ServiceError):
    """``--max-queue`` jobs are already accepted and unfinished; retry after ``retry_after_s``."""

    retry_after_s: int = 1

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class NotReady(ServiceError):
    """The workers are still warming up; ``GET /readyz`` says when they are ready."""


class InternalError(ServiceError):
    """A bug in the service; the details are in its log, not in the response."""


_STATUS: dict[type[OcrPoolError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    PathRefused: 403,
    JobNotFound: 404,
    NotCancellable: 409,
    JobCancelled: 410,
    BodyTooLarge: 413,
    InvalidInput: 422,
    EngineError: 422,
    QueueFull: 429,
    InternalError: 500,
    WorkerCrashed: 502,
    ResourceUnavailable: 503,
    EngineStartError: 503,
    PoolClosed: 503,
    NotReady: 503,
    JobTimeout: 504,
}


def status_of(error: OcrPoolError) -> int:
    """The HTTP status for ``error``: its own class's entry, else its nearest base's."""
    for kind in type(error).__mro__:
        status = _STATUS.get(kind)
        if status is not None:
            return status
    return 500
