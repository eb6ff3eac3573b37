"""The engine protocol: the one seam between ocrpool and an OCR library."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ocrpool.results import Recognition

Source = str | bytes
"""A path to an image file, or the file's bytes."""


@runtime_checkable
class Engine(Protocol):
    """An OCR engine owned by one worker process.

    Constructed with the pool's ``engine_options`` as keyword arguments (so bad options
    fail at start, in the worker), then ``start()``-ed once, asked to ``recognize`` one
    input at a time, and ``close()``-d before a clean exit. ``start`` must leave the
    engine warm: the worker reports ready as soon as it returns. Failures raise
    ``ocrpool.errors`` types (``InvalidInput`` for unreadable input, ``EngineError``
    otherwise); any other exception is reported as ``EngineError``.
    """

    def start(self) -> None: ...

    def recognize(self, source: Source) -> Recognition: ...

    def close(self) -> None: ...
