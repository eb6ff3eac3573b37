"""The output record: one per input, the same fields in every format."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ocrpool.errors import OcrPoolError
from ocrpool.results import Attempt, OcrResult, Page


@dataclass(frozen=True)
class InputFile:
    """An input as the scan saw it; ``size`` and ``mtime`` are ``None`` when it cannot be
    stat-ed. Path, size and mtime together say whether a later run may skip it."""

    path: str
    size: int | None
    mtime: float | None


@dataclass(frozen=True)
class Record:
    """One input's outcome: the input as scanned, its format, and the pool's result."""

    input: InputFile
    format: str | None
    result: OcrResult
    exports: dict[str, str] = field(default_factory=dict)
    """The files the input was exported to, by format; written before the record."""

    @classmethod
    def failure(cls, source: InputFile, fmt: str | None, error: OcrPoolError) -> Record:
        """A record for an input that never reached the pool."""
        return cls(source, fmt, OcrResult(source.path, error=error))

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def error(self) -> OcrPoolError | None:
        return self.result.error

    @property
    def text(self) -> str:
        """The pages' text, separated by form feeds (as Tesseract's text output does)."""
        return "\f".join(page.text for page in self.result.pages)

    @property
    def empty_pages(self) -> list[int]:
        """The numbers (from 1) of the pages that came back without text."""
        return [number for number, page in enumerate(self.result.pages, start=1) if page.empty]

    @property
    def partial(self) -> bool:
        """Some pages of the document failed, the others came back (``OcrResult.partial``)."""
        return self.result.partial

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """JSON-ready form; ``detail`` adds each page's lines with boxes and confidences."""
        result = self.result
        return {
            "path": self.input.path,
            "size": self.input.size,
            "mtime": self.input.mtime,
            "format": self.format,
            "ok": self.ok,
            "partial": result.partial,
            "failed_pages": list(result.failed_pages),
            "error": None if self.error is None else self.error.to_dict(),
            "pages": [_page_dict(page, detail) for page in result.pages],
            "attempts": [_attempt_dict(attempt) for attempt in result.attempts],
            "worker_pid": result.worker_pid,
            "elapsed_s": round(result.elapsed_s, 4),
            "rss_mb": None if result.rss_mb is None else round(result.rss_mb, 1),
            "evaluation_mode": result.evaluation_mode,
            "exports": self.exports,
        }


def _attempt_dict(attempt: Attempt) -> dict[str, Any]:
    return asdict(attempt) | {"elapsed_s": round(attempt.elapsed_s, 4)}


def _page_dict(page: Page, detail: bool) -> dict[str, Any]:
    """``text`` and ``empty``; ``error`` for a page that failed; ``rotation`` and
    ``corrected_text`` when the engine checked them; ``lines`` with ``detail``."""
    data: dict[str, Any] = {"text": page.text, "empty": page.empty}
    if page.error is not None:
        data["error"] = page.error.to_dict()
    if page.rotation is not None:
        data["rotation"] = round(page.rotation, 2)
    if page.corrected_text is not None:
        data["corrected_text"] = page.corrected_text
    if detail:
        data["lines"] = [asdict(line) for line in page.lines]
    return data
