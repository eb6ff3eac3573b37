"""The engine protocol: the one seam between ocrpool and an OCR library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ocrpool.errors import EngineOptionError
from ocrpool.exports import ExportFormat, parse_formats
from ocrpool.results import Recognition


@dataclass(frozen=True)
class PageSpan:
    """Pages ``start`` to ``start + count - 1`` (counted from 0) of the multi-page file at
    ``path``: one page job of a document the pool split. Sent only to an engine whose class
    says ``reads_page_spans = True``; its ``Recognition`` holds exactly ``count`` pages."""

    path: str
    start: int
    count: int
    stamp: tuple[int, ...] | None = None
    """The file's size and modification time as it was split (``formats.Stamp``; split
    and read on one machine, its ``formats.FileId``): a worker refuses the span once the
    file has others (replaced, rewritten), before or while it reads it, so a document
    changed while its pages run never comes back mixed from two files. ``None``: not
    checked."""

    @property
    def numbers(self) -> range:
        """The span's page numbers, counted from 1 as people count pages."""
        return range(self.start + 1, self.start + self.count + 1)


Source = str | bytes | PageSpan
"""A path to an image file, the file's bytes, or some pages of a multi-page file."""


MAX_NAME = 64
"""The longest language or spell-check name a job may give (real ones are a few letters)."""


def check_switches(**switches: object) -> None:
    """``EngineOptionError`` for an on/off engine option given anything but a bool: a
    command line's ``yes`` arrives as text, which the engine would take as on, or choke
    on in its native settings."""
    for name, value in switches.items():
        if not isinstance(value, bool):
            raise EngineOptionError(f"{name} must be true or false, not {value!r}", option=name)


@dataclass(frozen=True)
class JobOptions:
    """One job's own recognition settings, over the engine's options for this job only
    (``ocrpool serve`` takes them per request); ``None`` keeps the engine's own."""

    language: str | None = None
    rotate_pages: bool | None = None
    spellcheck: str | None = None
    """A spell-check language; ``""`` turns off the engine's own spell-check."""
    exports: tuple[ExportFormat, ...] | None = None
    """Export formats (``ExportFormat`` members or their names); ``()``: none."""

    def __post_init__(self) -> None:
        """Checked in the caller's thread: these travel to a worker process, where a value
        of another type would fail (or fail to pickle) far from its cause."""
        for name, kind in (("language", str), ("rotate_pages", bool), ("spellcheck", str)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"{name} must be a {kind.__name__} or None, not {value!r}")
            if isinstance(value, str) and len(value) > MAX_NAME:  # it travels in a pipe
                raise ValueError(f"{name} must be a name of {MAX_NAME} characters at most")
            if isinstance(value, str) and (value or name == "language") and not _a_name(value):
                raise ValueError(f"{name} must be a name, not {value!r}")
            if isinstance(value, str) and type(value) is not str:
                object.__setattr__(self, name, str(value))
        if self.exports is not None:
            if isinstance(self.exports, str) or not isinstance(self.exports, (tuple, list)):
                raise TypeError(f"exports must be a tuple of formats, not {self.exports!r}")
            object.__setattr__(self, "exports", parse_formats(self.exports))


def _a_name(text: str) -> bool:
    """Whether ``text`` can name a language: printable, without spaces, not empty. Else a
    worker would run it (Aspose takes ``""`` as the engine's own language) or fail it
    there, far from the caller."""
    return bool(text) and text.isprintable() and not any(c.isspace() for c in text)


@runtime_checkable
class Engine(Protocol):
    """An OCR engine owned by one worker process.

    Constructed with the pool's ``engine_options`` as keyword arguments, and nothing else
    (the pool checks their names against the constructor before any worker starts; a
    ``TypeError``/``ValueError`` from it, or ``EngineOptionError`` from ``start``, is an
    option refused: the pool breaks at once, as no retry could succeed), then
    ``start()``-ed once, asked to ``recognize`` one
    input at a time, and ``close()``-d before a clean exit. ``start`` must leave the
    engine warm: the worker reports ready as soon as it returns. Failures raise
    ``ocrpool.errors`` types (``InvalidInput`` for unreadable input, ``EngineError``
    otherwise); any other exception is reported as ``EngineError``. An engine that reads
    a ``PageSpan`` says so with a class attribute ``reads_page_spans = True``; the pool
    splits multi-page documents only for such an engine. An engine that takes a job's
    own settings says so with ``takes_job_options = True``: its ``recognize`` then gets
    ``options`` (a ``JobOptions``) whenever a job has any.
    """

    def start(self) -> None: ...

    def recognize(self, source: Source) -> Recognition: ...

    def close(self) -> None: ...
