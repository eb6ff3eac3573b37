"""The engine protocol: the one seam between ocrpool and an OCR library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ocrpool.exports import ExportFormat
from ocrpool.results import Recognition


@dataclass(frozen=True)
class PageSpan:
    """Pages ``start`` to ``start + count - 1`` (counted from 0) of the multi-page file at
    ``path``: one page job of a document the pool split. Sent only to an engine whose class
    says ``reads_page_spans = True``; its ``Recognition`` holds exactly ``count`` pages."""

    path: str
    start: int
    count: int

    @property
    def numbers(self) -> range:
        """The span's page numbers, counted from 1 as people count pages."""
        return range(self.start + 1, self.start + self.count + 1)


Source = str | bytes | PageSpan
"""A path to an image file, the file's bytes, or some pages of a multi-page file."""


@dataclass(frozen=True)
class JobOptions:
    """One job's own recognition settings, over the engine's options for this job only
    (``ocrpool serve`` takes them per request); ``None`` keeps the engine's own."""

    language: str | None = None
    rotate_pages: bool | None = None
    spellcheck: str | None = None
    """A spell-check language; ``""`` turns off the engine's own spell-check."""
    exports: tuple[ExportFormat, ...] | None = None


@runtime_checkable
class Engine(Protocol):
    """An OCR engine owned by one worker process.

    Constructed with the pool's ``engine_options`` as keyword arguments (so bad options
    fail at start, in the worker), then ``start()``-ed once, asked to ``recognize`` one
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
