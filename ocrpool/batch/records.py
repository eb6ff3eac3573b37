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
    input: InputFile
    format: str | None
    error: OcrPoolError | None = None
    pages: tuple[Page, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    worker_pid: int | None = None
    elapsed_s: float = 0.0
    rss_mb: float | None = None
    evaluation_mode: bool = False
    exports: dict[str, str] = field(default_factory=dict)
    """The files the input was exported to, by format; written before the record."""

    @classmethod
    def from_result(cls, source: InputFile, fmt: str | None, result: OcrResult) -> Record:
        return cls(
            input=source,
            format=fmt,
            error=result.error,
            pages=result.pages,
            attempts=result.attempts,
            worker_pid=result.worker_pid,
            elapsed_s=result.elapsed_s,
            rss_mb=result.rss_mb,
            evaluation_mode=result.evaluation_mode,
        )

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The pages' text, separated by form feeds (as Tesseract's text output does)."""
        return "\f".join(page.text for page in self.pages)

    @property
    def empty_pages(self) -> list[int]:
        """The numbers (from 1) of the pages that came back without text."""
        return [number for number, page in enumerate(self.pages, start=1) if page.empty]

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """JSON-ready form; ``detail`` adds each page's lines with boxes and confidences."""
        return {
            "path": self.input.path,
            "size": self.input.size,
            "mtime": self.input.mtime,
            "format": self.format,
            "ok": self.ok,
            "error": None if self.error is None else self.error.to_dict(),
            "pages": [_page_dict(page, detail) for page in self.pages],
            "attempts": [_attempt_dict(attempt) for attempt in self.attempts],
            "worker_pid": self.worker_pid,
            "elapsed_s": round(self.elapsed_s, 4),
            "rss_mb": None if self.rss_mb is None else round(self.rss_mb, 1),
            "evaluation_mode": self.evaluation_mode,
            "exports": self.exports,
        }


def _attempt_dict(attempt: Attempt) -> dict[str, Any]:
    return asdict(attempt) | {"elapsed_s": round(attempt.elapsed_s, 4)}


def _page_dict(page: Page, detail: bool) -> dict[str, Any]:
    """``text`` and ``empty``; ``rotation`` and ``corrected_text`` when the engine checked
    them; ``lines`` with ``detail``."""
    data: dict[str, Any] = {"text": page.text, "empty": page.empty}
    if page.rotation is not None:
        data["rotation"] = round(page.rotation, 2)
    if page.corrected_text is not None:
        data["corrected_text"] = page.corrected_text
    if detail:
        data["lines"] = [asdict(line) for line in page.lines]
    return data
