"""The one table from every error to its answer: the exit code of the ``ocrpool``
commands and the HTTP status of ``ocrpool serve``.

A lookup walks the error's MRO, so a subclass answers as its nearest listed base; a
column left ``None`` (an HTTP-only refusal has no exit code, a command-line problem no
status) falls through to that base's value. The CLI and the service read this table and
nothing else: they never match an error by its message.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ocrpool.batch.errors import BatchError, OutputFailed, OutputNameRefused
from ocrpool.engines.aspose.models import ModelDirUnusable
from ocrpool.engines.aspose.runtime import RuntimeSetupError
from ocrpool.errors import (
    DocumentTooLong,
    EmptyPages,
    EngineConfigError,
    EngineError,
    EngineStartError,
    InvalidInput,
    JobCancelled,
    JobTimeout,
    LicenseRejected,
    OcrPoolError,
    OutOfResources,
    PagesFailed,
    PoolClosed,
    ResourceUnavailable,
    WorkerCrashed,
)
from ocrpool.scaleout.errors import (
    ActorLost,
    ActorsNotReady,
    RayNotInstalled,
    RayUnavailable,
    ScaleOutError,
)
from ocrpool.service.errors import (
    BadRequest,
    BodyTooLarge,
    CannotListen,
    InternalError,
    JobNotFound,
    MethodNotAllowed,
    NotCancellable,
    NotFound,
    NotReady,
    PathRefused,
    QueueFull,
    RequestTimeout,
    ServiceError,
    TooManyPages,
    Unauthorized,
)


class ExitCode(enum.IntEnum):
    """Exit codes of the ``ocrpool`` command; each one's ``description`` is what ``--help``
    prints for it."""

    description: str

    def __new__(cls, value: int, description: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    OK = 0, "everything asked for succeeded"
    SOME_FAILED = 1, "the command ran, but some inputs failed (or a check did not pass)"
    USAGE = 2, "bad arguments, inputs or output: nothing was written"
    OUTPUT_FAILED = 3, "the output could not be written mid-run (disk full); a rerun resumes"
    ENGINE_UNAVAILABLE = 4, "the engine or its workers cannot start (see `ocrpool doctor`)"
    TOO_MANY_FAILURES = (
        5,
        "--max-failures N: N inputs in a row failed, so the run stopped; a rerun resumes",
    )
    INTERRUPTED = 130, "stopped by Ctrl-C or SIGTERM; a rerun resumes"


@dataclass(frozen=True)
class Answer:
    exit_code: ExitCode | None
    """What a command exits with when this error ends it; a per-input error only fails
    its input, and the run then exits ``SOME_FAILED``."""
    http_status: int | None


_E = ExitCode
TABLE: dict[type[OcrPoolError], Answer] = {
    OcrPoolError: Answer(_E.SOME_FAILED, 500),
    # One input's failure: recorded, and the service answers with it.
    InvalidInput: Answer(_E.SOME_FAILED, 422),
    DocumentTooLong: Answer(_E.SOME_FAILED, 413),
    EngineError: Answer(_E.SOME_FAILED, 422),
    ResourceUnavailable: Answer(_E.SOME_FAILED, 503),
    EmptyPages: Answer(_E.SOME_FAILED, 422),
    PagesFailed: Answer(_E.SOME_FAILED, 422),  # the service answers its record with 200
    JobTimeout: Answer(_E.SOME_FAILED, 504),
    WorkerCrashed: Answer(_E.SOME_FAILED, 502),
    JobCancelled: Answer(_E.SOME_FAILED, 410),
    ActorLost: Answer(_E.SOME_FAILED, 502),
    # Nothing can run: the engine, its runtime or its hosts are missing, or the pool stopped.
    EngineStartError: Answer(_E.ENGINE_UNAVAILABLE, 503),
    LicenseRejected: Answer(_E.ENGINE_UNAVAILABLE, 503),
    RuntimeSetupError: Answer(_E.ENGINE_UNAVAILABLE, 503),
    PoolClosed: Answer(_E.ENGINE_UNAVAILABLE, 503),
    OutOfResources: Answer(_E.ENGINE_UNAVAILABLE, 503),
    RayUnavailable: Answer(_E.ENGINE_UNAVAILABLE, 503),
    ActorsNotReady: Answer(_E.ENGINE_UNAVAILABLE, 503),
    # The engine refused its options: the command line (or the service's settings) is wrong.
    EngineConfigError: Answer(_E.USAGE, 503),
    # The command line or the output.
    BatchError: Answer(_E.USAGE, None),
    ScaleOutError: Answer(_E.USAGE, None),
    RayNotInstalled: Answer(_E.USAGE, None),
    OutputFailed: Answer(_E.OUTPUT_FAILED, None),
    OutputNameRefused: Answer(_E.SOME_FAILED, None),  # one input's own file: recorded
    ModelDirUnusable: Answer(_E.USAGE, None),
    # The service's own refusals.
    ServiceError: Answer(None, 500),
    BadRequest: Answer(None, 400),
    Unauthorized: Answer(None, 401),
    PathRefused: Answer(None, 403),
    JobNotFound: Answer(None, 404),
    NotFound: Answer(None, 404),
    MethodNotAllowed: Answer(None, 405),
    RequestTimeout: Answer(None, 408),
    NotCancellable: Answer(None, 409),
    BodyTooLarge: Answer(None, 413),
    TooManyPages: Answer(None, 413),
    QueueFull: Answer(None, 429),
    InternalError: Answer(None, 500),
    NotReady: Answer(None, 503),
    CannotListen: Answer(_E.USAGE, None),
}

RETRY_AFTER_S = 1
"""What a 503 tells clients to wait (``Retry-After``) when the error names no time."""


def listed_base(kind: type[OcrPoolError]) -> type[OcrPoolError]:
    """The nearest class in ``kind``'s MRO that the table lists (at worst ``OcrPoolError``)."""
    return next(base for base in kind.__mro__ if base in TABLE)


def exit_code_of(error: OcrPoolError | type[OcrPoolError]) -> ExitCode:
    return _lookup(error, lambda answer: answer.exit_code)


def http_status_of(error: OcrPoolError | type[OcrPoolError]) -> int:
    return _lookup(error, lambda answer: answer.http_status)


_T = TypeVar("_T")


def _lookup(error: OcrPoolError | type[OcrPoolError], column: Callable[[Answer], _T | None]) -> _T:
    """The column's value of the nearest class in the error's MRO that gives one."""
    kind = error if isinstance(error, type) else type(error)
    values = (column(TABLE[base]) for base in kind.__mro__ if base in TABLE)
    return next(value for value in values if value is not None)
