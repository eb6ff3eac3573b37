"""The output record: one per input, the same fields in every format."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """JSON-ready form; ``detail`` adds each page's lines with boxes and confidences."""
        result = self.result
        return {
            "path": self.input.path,
            "size": self.input.size,
            "mtime": self.input.mtime,
            "format": self.format,
            "ok": self.ok,
            "error": None if self.error is None else self.error.to_dict(),
            "pages": [_page_dict(page, detail) for page in result.pages],
            "attempts": [_attempt_dict(attempt) for attempt in result.attempts],
            "worker_pid": result.worker_pid,
            "elapsed_s": round(result.elapsed_s, 4),
            "rss_mb": None if result.rss_mb is None else round(result.rss_mb, 1),
            "evaluation_mode": result.evaluation_mode,
        }


def _attempt_dict(attempt: Attempt) -> dict[str, Any]:
    return asdict(attempt) | {"elapsed_s": round(attempt.elapsed_s, 4)}


def _page_dict(page: Page, detail: bool) -> dict[str, Any]:
    if not detail:
        return {"text": page.text}
    return {"text": page.text, "lines": [asdict(line) for line in page.lines]}
