"""Plain, picklable results: what engines return and what the pool hands back."""

from __future__ import annotations

from dataclasses import dataclass

from ocrpool.errors import OcrPoolError, PagesFailed
from ocrpool.exports import Export, ExportFormat


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
    rotation: float | None = None
    """Degrees the page was turned before recognition; ``None``: orientation not checked."""
    corrected_text: str | None = None
    """``text`` after spell-check; ``None``: not spell-checked."""
    error: OcrPoolError | None = None
    """Why this page of a split document has no text: its page job failed for good."""

    @property
    def empty(self) -> bool:
        """No text came back: a blank page, or one the engine could not read (a page that
        failed is not empty: see ``error``)."""
        return self.error is None and not self.text.strip()


@dataclass(frozen=True)
class Recognition:
    """What an engine returns for one input."""

    pages: tuple[Page, ...]
    evaluation_mode: bool = False
    exports: tuple[Export, ...] = ()

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
    exports: tuple[Export, ...] = ()
    """The documents asked for with the engine option ``exports``, in that order."""

    @property
    def ok(self) -> bool:
        """Every page came back: no error, for the document or any of its pages."""
        return self.error is None

    @property
    def partial(self) -> bool:
        """Some pages of a split document failed for good and the others came back: ``ok``
        is false, ``error`` is ``PagesFailed``, the failed pages carry their own ``error``."""
        return isinstance(self.error, PagesFailed)

    @property
    def failed_pages(self) -> tuple[int, ...]:
        """The numbers (from 1) of the pages that failed, each with its ``Page.error``."""
        return tuple(n for n, page in enumerate(self.pages, start=1) if page.error is not None)

    @property
    def text(self) -> str:
        return "\n".join(page.text for page in self.pages)

    def export(self, fmt: ExportFormat | str) -> bytes:
        """The exported document in ``fmt``; ``KeyError`` if it was not asked for."""
        wanted = ExportFormat(fmt)
        for item in self.exports:
            if item.format is wanted:
                return item.data
        raise KeyError(f"{self.input}: no {wanted.value} export")
