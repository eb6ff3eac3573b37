"""What the service refuses.

A service error is an ``OcrPoolError`` like the pool's own, so every non-2xx response has
the same body: the error's ``to_dict()`` (type, message, fields), never a stack trace.
Their HTTP statuses are in the one table of every error, ``ocrpool.error_codes``.
"""

from __future__ import annotations

from ocrpool.errors import OcrPoolError


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
    """The job, or one input of a batch, already runs on a worker: nothing of it was
    cancelled (``?kill=true`` stops it all)."""

    id: str = ""


class BodyTooLarge(ServiceError):
    """The request body is over ``--max-body-mb``."""

    limit_bytes: int = 0


class TooManyPages(ServiceError):
    """The request's inputs hold more than ``--max-pages`` pages in all: each page is a job
    of its own, so a long document would queue thousands behind one queue slot."""

    pages: int = 0
    limit: int = 0


class RequestTimeout(ServiceError):
    """The request's headers, or then its body, did not arrive within ``--body-timeout``:
    a stalled upload gives its queue slot back rather than hold it; the connection is
    closed."""

    timeout_s: float = 0.0

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class NotFound(ServiceError):
    """No such route."""


class MethodNotAllowed(ServiceError):
    """The route exists, but not for this method; ``allow`` lists the ones it takes."""

    allow: list[str] | None = None

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allow or ())}


class QueueFull(ServiceError):
    """``--max-queue`` jobs are already accepted and unfinished; retry after ``retry_after_s``."""

    retry_after_s: int = 1

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class NotReady(ServiceError):
    """The workers are still warming up; ``GET /readyz`` says when they are ready."""


class CannotListen(ServiceError):
    """``ocrpool serve`` cannot listen on its ``--host`` and ``--port`` (in use, not an
    address of this machine, a privileged port): a usage error, found before the pool
    starts."""

    host: str = ""
    port: int = 0


class InternalError(ServiceError):
    """A bug in the service; the details are in its log, not in the response."""
