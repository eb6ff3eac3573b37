"""Plain, picklable results: what engines return and what the pool hands back."""

from __future__ import annotations

from dataclasses import dataclass

from ocrpool.errors import OcrPoolError


@dataclass(frozen=True)
class Line:
    """One recognised line; ``box`` is ``(x, y, width, height)`` in pixels."""

    text: str
    box: tuple[int, int, int, int] | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class Page:
    """The text of one page (one image, or one page of a TIFF or PDF)."""

    text: str
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True)
class Recognition:
    """What an engine returns for one input."""

    pages: tuple[Page, ...]
    evaluation_mode: bool = False

    @property
    def text(self) -> str:
        return "\n".join(page.text for page in self.pages)


@dataclass(frozen=True)
class Attempt:
    """One try of a job on one worker: ``outcome`` is ``"ok"`` or the error's type name."""

    worker_pid: int | None
    outcome: str
    elapsed_s: float
    message: str = ""

    @classmethod
    def of(cls, worker_pid: int | None, error: OcrPoolError | None, elapsed_s: float) -> Attempt:
        if error is None:
            return cls(worker_pid, "ok", elapsed_s)
        return cls(worker_pid, type(error).__name__, elapsed_s, str(error))


@dataclass(frozen=True)
class OcrResult:
    """The final word on one job, successful or not."""

    input: str
    pages: tuple[Page, ...] = ()
    error: OcrPoolError | None = None
    attempts: tuple[Attempt, ...] = ()
    worker_pid: int | None = None
    elapsed_s: float = 0.0
    rss_mb: float | None = None
    evaluation_mode: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        return "\n".join(page.text for page in self.pages)
