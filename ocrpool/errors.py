"""Errors a caller can catch; their fields are the output schema.

Each class declares its fields as annotated class attributes with defaults. The
constructor takes the message positionally and exactly those fields by keyword: a
type checker sees it (``dataclass_transform``, PEP 681, synthesizes
``__init__(message, *, field=default, ...)`` for every subclass, so ``InvalidInput("x",
path="y")`` is a type error), and at run time one generic ``__init__`` checks the names
(a misspelt field is a ``TypeError``). ``to_dict()`` writes every field into each JSONL
and SQLite record. Errors cross the process boundary as plain data: ``__reduce__`` sends
the class, the message and the fields, and rebuilds them without calling a subclass's own
constructor (``RayNotInstalled(reason)``, ``OutputFailed.of``).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar, dataclass_transform


def _positional(*, kw_only: bool = True) -> Any:
    """Field specifier for type checkers only: marks ``message`` as positional."""
    raise NotImplementedError


@dataclass_transform(eq_default=False, kw_only_default=True, field_specifiers=(_positional,))
class _Declared(Exception):
    """Makes type checkers treat every error class as a dataclass of its fields."""


class OcrPoolError(_Declared):
    """Base of every error ocrpool raises."""

    _field_names: ClassVar[tuple[str, ...]] = ()

    if TYPE_CHECKING:
        message: str = _positional(kw_only=False)
    else:

        def __init__(self, message: str, **fields: Any) -> None:
            super().__init__(message)
            unknown = set(fields) - set(self._field_names)
            if unknown:
                names = ", ".join(sorted(unknown))
                raise TypeError(f"{type(self).__name__} has no field {names}")
            for name in self._field_names:
                setattr(self, name, fields.get(name, getattr(type(self), name)))

        @property
        def message(self) -> str:
            return str(self.args[0]) if self.args else ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = tuple(name for name in inspect.get_annotations(cls) if name[0] != "_")
        cls._field_names = (*cls._field_names, *(n for n in own if n not in cls._field_names))

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.message, dict(self.__dict__))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the type name, the message and every declared field."""
        data: dict[str, Any] = {"type": type(self).__name__, "message": self.message}
        data.update((name, getattr(self, name)) for name in self._field_names)
        return data


def _rebuild(kind: type[OcrPoolError], message: str, state: dict[str, Any]) -> OcrPoolError:
    """Unpickle an error: its message and fields, whatever its own constructor takes."""
    error = kind.__new__(kind)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidInput(OcrPoolError):
    """The input cannot be read: missing, unreadable, empty, corrupt, unsupported or too large.

    Deterministic: retrying it on another worker gives the same answer, so it is never retried.
    """

    input: str | None = None
    """The path or label of the input."""


class ImageTooLarge(InvalidInput):
    """The image's declared size is past the pixel limit: a possible decompression bomb."""

    width: int = 0
    height: int = 0
    max_pixels: int = 0


class DocumentTooLong(InvalidInput):
    """The document holds more pages than the pool's ``max_pages``: it is neither split
    nor read, so one input cannot queue thousands of page jobs."""

    pages: int = 0
    max_pages: int = 0


class EngineError(OcrPoolError):
    """The engine failed on an input it could read, or could not be set up. Not retried."""

    input: str | None = None


class EngineOptionError(EngineError):
    """The engine refused an option: one it does not take, or a value it does not accept
    (an unknown language). At start it breaks the pool at once (``EngineConfigError``: no
    retry can succeed); a job's own option fails that job."""

    option: str = ""


class ResourceUnavailable(EngineError):
    """A setting needs an engine resource that is not on this machine (and may not be downloaded).

    Provide ``resource`` locally or choose settings that work offline.
    """

    resource: str = ""


class LicenseRejected(EngineError):
    """The engine's license file is missing, unreadable or was refused by the engine."""

    license: str = ""
    """The license file's path."""


class ExportFailed(EngineError):
    """The engine read the input but could not render an export asked for; ``format``
    names it. Not retried: the same input gives the same answer."""

    format: str = ""


class EmptyPages(OcrPoolError):
    """Pages came back without text and the run is strict (``ocrpool run --strict``);
    ``pages`` holds their numbers, counted from 1."""

    pages: list[int] | None = None


class PagesFailed(OcrPoolError):
    """Some pages of a split document failed for good; the others came back. The result
    holds every page in order, each failed one with its own typed ``error``; ``pages``
    holds the failed pages' numbers, counted from 1, ``total`` the document's page count."""

    pages: list[int] | None = None
    total: int = 0

    @property
    def result(self) -> Any:
        """The document's ``OcrResult`` (every page in order, the failed ones with their
        ``error``), for callers of ``submit``/``recognize``, which get this error raised."""
        return self.__dict__.get("_result")

    def attach(self, result: Any) -> None:
        self.__dict__["_result"] = result


class JobTimeout(OcrPoolError):
    """The job ran past ``job_timeout`` and its worker was stopped. Not retried."""

    timeout: float | None = None
    """The limit, in seconds."""
    stderr_tail: str = ""
    """The end of what the worker wrote: the Python stack it dumped on SIGTERM, if any."""


class WorkerCrashed(OcrPoolError):
    """The worker died while running the job."""

    exitcode: int | None = None
    """Negative: killed by that signal number (``multiprocessing``'s convention)."""
    signal: str | None = None
    """The signal's name (``"SIGSEGV"``) when a signal ended it."""
    stderr_tail: str = ""
    """The end of what the worker wrote: a fatal-signal dump, native messages."""


class MemoryLimitExceeded(WorkerCrashed):
    """The worker's RSS passed the hard limit during the job and the supervisor killed it."""

    rss_mb: float | None = None
    limit_mb: float | None = None


class EngineStartError(OcrPoolError):
    """Workers could not start their engine; the pool is broken.

    Run ``ocrpool doctor`` to see which part of the engine's runtime is missing.
    """

    attempts: int = 0
    """Failed starts that led to this verdict."""
    exitcode: int | None = None
    stderr_tail: str = ""
    """What the last worker that failed printed."""


class EngineConfigError(EngineStartError):
    """The engine refused the pool's engine options when a worker started it: the pool
    broke at that first refusal, without the retries of other failed starts. Fix
    ``option``; ``ocrpool doctor`` cannot help."""

    option: str = ""


class JobCancelled(OcrPoolError):
    """The job was cancelled: while it ran (``OcrPool.cancel(future, kill=True)``), or, in
    the service, before it ran (``DELETE /v1/jobs/{id}``)."""


class PoolClosed(OcrPoolError):
    """The pool is closed or shut down: the job was never run."""


class OutOfResources(OcrPoolError):
    """This process could not read an input for want of file descriptors or memory
    (``ulimit -n``, ``ulimit -v``): not the input's fault, so it is never recorded as the
    input's failure. ``ocrpool run`` stops with the input unrecorded, and the same command
    resumes; the service answers 503."""

    path: str = ""
    """The file it could not read."""
    reason: str = ""
    """What the system said (``Too many open files``)."""
