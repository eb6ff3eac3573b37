"""A deterministic engine for tests, demos, benchmarks and integration checks.

It reads the input and returns the file's stem as its text (nothing for a name with
``blank`` in it); a multi-page TIFF or PDF gives one page per page, ``"<stem> p<n>"``,
and a ``PageSpan`` just the pages it names, with the same text. It renders the exports
asked for as one line per page naming the format and the text, except ``pdf`` and
``pdf-no-img``: a real PDF of blank pages, each carrying its text under ``/FakeText``, and
``hocr``: an XHTML file with one ``ocr_page`` div per page numbered from 1 in the file,
as Tesseract writes it; so merged documents can be checked page by page. Its options
inject the faults a native OCR library shows in production: slow jobs, leaked native
memory and file handles, slow or failing start-up, one input ballooning, and inputs
whose names ask the worker to segfault, abort, or hang in native code with every signal
masked, or one chosen page (``fault_page``) that does the same. A start can fail, or
hang, only while a marker file exists, so a test imitates an outage that ends (a license
server back, a disk remounted) by removing the file.
"""

from __future__ import annotations

import ctypes
import dataclasses
import html
import io
import math
import os
import signal
import time
from collections.abc import Sequence
from pathlib import PurePath
from typing import ClassVar

from ocrpool.engines.base import JobOptions, PageSpan, Source
from ocrpool.errors import EngineError, EngineOptionError, InvalidInput
from ocrpool.exports import Export, ExportFormat, parse_formats
from ocrpool.formats import page_count
from ocrpool.processes import MB
from ocrpool.results import Page, Recognition

_START_FAILURES = ("raise", "refuse", "abort", "exit", "hang")
_PAGE_FAULTS = ("crash", "abort", "hang", "raise")


def _amount(option: str, value: object) -> float:
    """A finite number of 0 or more (seconds, MB, handles), or ``EngineOptionError``."""
    try:
        amount = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        amount = math.nan
    if not math.isfinite(amount) or amount < 0:
        raise EngineOptionError(
            f"{option} must be a finite number of 0 or more, not {value!r}", option=option
        )
    return amount


class FakeEngine:
    """Options: ``delay`` (s per page), ``leak_mb`` (native memory leaked per job),
    ``leak_fds`` (file handles leaked per job), ``start_delay`` (s), ``fail_start``
    (``True``/``"raise"``, ``"refuse"``, ``"abort"``, ``"exit"`` or ``"hang"``),
    ``fail_start_while`` (a path: ``fail_start``, by default ``"raise"``, happens only
    while it exists),
    ``close_delay`` (s ``close()`` takes), ``balloon_mb`` (allocated at once by an input
    whose name contains ``balloon``), ``exports`` (format names, as for the aspose
    engine), ``fault_page`` (a page number, from 1: recognising it does ``page_fault``,
    one of ``"crash"`` (the default), ``"abort"``, ``"hang"`` or ``"raise"``, whether the
    page comes whole or in a span). A job's own ``exports`` replace the engine's; its
    ``rotate_pages`` gives each page a rotation of 0 and its ``spellcheck`` a corrected text
    equal to the text, so a caller sees they arrived; its ``language`` is accepted."""

    reads_page_spans: ClassVar[bool] = True
    takes_job_options: ClassVar[bool] = True

    def __init__(
        self,
        *,
        delay: float = 0.0,
        leak_mb: float = 0.0,
        leak_fds: int = 0,
        start_delay: float = 0.0,
        fail_start: bool | str = False,
        fail_start_while: str | None = None,
        close_delay: float = 0.0,
        balloon_mb: float = 0.0,
        exports: Sequence[str] = (),
        fault_page: int | None = None,
        page_fault: str = "crash",
    ) -> None:
        if fail_start is True or (fail_start_while and not fail_start):
            fail_start = "raise"
        if fail_start and fail_start not in _START_FAILURES:
            raise EngineOptionError(
                f"fail_start must be one of {_START_FAILURES}, not {fail_start!r}",
                option="fail_start",
            )
        self.delay = _amount("delay", delay)
        self.leak_mb = _amount("leak_mb", leak_mb)
        self.leak_fds = int(_amount("leak_fds", leak_fds))
        self.start_delay = _amount("start_delay", start_delay)
        self.fail_start = fail_start or None
        self.fail_start_while = fail_start_while
        self.close_delay = _amount("close_delay", close_delay)
        self.balloon_mb = _amount("balloon_mb", balloon_mb)
        if fault_page is not None and (type(fault_page) is not int or fault_page < 1):
            raise EngineOptionError(
                f"fault_page must be a page number from 1, not {fault_page!r}",
                option="fault_page",
            )
        if page_fault not in _PAGE_FAULTS:
            raise EngineOptionError(
                f"page_fault must be one of {_PAGE_FAULTS}, not {page_fault!r}",
                option="page_fault",
            )
        self.fault_page = fault_page
        self.page_fault = page_fault
        try:
            self.exports = parse_formats(exports)
        except (TypeError, ValueError) as exc:
            raise EngineOptionError(str(exc), option="exports") from None
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.malloc.restype = ctypes.c_void_p
        self._libc.malloc.argtypes = [ctypes.c_size_t]
        self._leaked_fds: list[int] = []

    def start(self) -> None:
        if self.start_delay:
            time.sleep(self.start_delay)
        if self.fail_start_while is not None and not os.path.exists(self.fail_start_while):
            return
        if self.fail_start == "hang":
            self._hang()
        if self.fail_start == "raise":
            raise EngineError("fake engine: start failed as asked (fail_start)")
        if self.fail_start == "refuse":
            raise EngineOptionError("fake engine: options refused as asked", option="fail_start")
        if self.fail_start == "abort":
            self._libc.abort()
        if self.fail_start == "exit":
            os._exit(3)

    def recognize(self, source: Source, options: JobOptions | None = None) -> Recognition:
        options = options or JobOptions()
        name, data = self._read(source.path if isinstance(source, PageSpan) else source)
        if "crash" in name:
            ctypes.string_at(0)
        if "abort" in name:
            self._libc.abort()
        if "hang" in name:
            self._hang()
        if "balloon" in name and self.balloon_mb:
            self._leak_memory(self.balloon_mb)
        if self.leak_mb:
            self._leak_memory(self.leak_mb)
        for _ in range(self.leak_fds):
            self._leaked_fds.append(os.open(os.devnull, os.O_RDONLY))
        texts = self._page_texts(source, name, data)
        if self.delay:
            time.sleep(self.delay * len(texts))
        pages = tuple(
            Page(
                text=text,
                rotation=0.0 if options.rotate_pages else None,
                corrected_text=text if options.spellcheck else None,
            )
            for text in texts.values()
        )
        formats = self.exports if options.exports is None else options.exports
        exports = tuple(Export(fmt, self._render(fmt, pages)) for fmt in formats)
        return Recognition(pages=pages, exports=exports)

    def _page_texts(self, source: Source, name: str, data: bytes) -> dict[int, str]:
        """Each page's text by its number (from 1), after any fault its number asks for."""
        if isinstance(source, bytes):
            return {1: f"{len(data)} bytes"}
        stem = "" if "blank" in name else PurePath(name).stem
        total = page_count(io.BytesIO(data)) or 1
        if isinstance(source, PageSpan):
            if source.start + source.count > total:
                raise InvalidInput(f"{name}: no pages {list(source.numbers)}", input=name)
            numbers = source.numbers
        else:
            numbers = range(1, total + 1)
        if self.fault_page in numbers:
            self._page_fault()
        if total == 1:
            return {1: stem}
        return {number: f"{stem} p{number}" if stem else "" for number in numbers}

    def _page_fault(self) -> None:
        if self.page_fault == "crash":
            ctypes.string_at(0)
        if self.page_fault == "abort":
            self._libc.abort()
        if self.page_fault == "hang":
            self._hang()
        raise EngineError(f"fake engine: page {self.fault_page} failed as asked (fault_page)")

    @staticmethod
    def _render(fmt: ExportFormat, pages: tuple[Page, ...]) -> bytes:
        """The export of ``pages``; a text made of a name's bytes that are not UTF-8 (lone
        surrogates, which neither UTF-8 nor a PDF string can hold) with U+FFFD for them."""
        pages = tuple(dataclasses.replace(page, text=_encodable(page.text)) for page in pages)
        if fmt in (ExportFormat.PDF, ExportFormat.PDF_NO_IMG):
            from pypdf import PdfWriter
            from pypdf.generic import NameObject, TextStringObject

            writer = PdfWriter()
            for page in pages:
                blank = writer.add_blank_page(200, 100)
                blank[NameObject("/FakeText")] = TextStringObject(page.text)
            out = io.BytesIO()
            writer.write(out)
            return out.getvalue()
        if fmt is ExportFormat.HOCR:
            return _hocr(pages)
        return "".join(f"{fmt.value} export of {page.text}\n" for page in pages).encode()

    def close(self) -> None:
        """Releases the leaked handles; leaked memory stays, as it would in a real library."""
        if self.close_delay:
            time.sleep(self.close_delay)
        for fd in self._leaked_fds:
            os.close(fd)
        self._leaked_fds.clear()

    @staticmethod
    def _read(source: str | bytes) -> tuple[str, bytes]:
        if isinstance(source, bytes):
            if not source:
                raise InvalidInput("empty input (0 bytes)", input=None)
            return "", source
        try:
            with open(source, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise InvalidInput(f"cannot read {source}: {exc.strerror}", input=source) from None
        if not data:
            raise InvalidInput(f"empty file: {source}", input=source)
        return os.path.basename(source), data

    def _leak_memory(self, megabytes: float) -> None:
        size = int(megabytes * MB)
        address = self._libc.malloc(size)
        if not address:
            raise EngineError(f"fake engine: malloc of {megabytes} MB failed")
        ctypes.memset(address, 1, size)

    def _hang(self) -> None:
        """Block forever in native code with every signal masked: only SIGKILL ends it."""
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        while True:
            self._libc.pause()


def _encodable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _hocr(pages: tuple[Page, ...]) -> bytes:
    body = "".join(
        f"  <div class='ocr_page' id='page_{number}' title='bbox 0 0 200 100; ppageno "
        f"{number - 1}'>\n"
        f"   <span class='ocr_line' id='line_{number}_1' title='bbox 0 0 200 20'>"
        f"<span class='ocrx_word' id='word_{number}_1' title='bbox 0 0 200 20'>"
        f"{html.escape(page.text)}</span></span>\n  </div>\n"
        for number, page in enumerate(pages, 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml">\n <head>\n'
        "  <meta name='ocr-system' content='ocrpool fake' />\n"
        f"  <meta name='ocr-number-of-pages' content='{len(pages)}' />\n"
        f" </head>\n <body>\n{body} </body>\n</html>\n"
    ).encode()
