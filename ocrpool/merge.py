"""One export file from the exports of a split document's page jobs, pages in order.

Runs in the thread that finishes a document (never the supervisor's): PDFs are joined
with pypdf, hOCR page divs one after the other, text by concatenation. A span whose job
failed is filled so the document keeps its page count: in a PDF, the original page
without a text layer (a PDF input's own page; a TIFF's page image through Pillow when it
is installed, else a blank page); in hOCR, an empty ``ocr_page`` (of the page's size
for a TIFF); in text, nothing. Formats not listed in ``MERGEABLE`` are never split: the
pool renders such a document in one job.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from ocrpool.engines.base import PageSpan
from ocrpool.exports import Export, ExportFormat
from ocrpool.formats import HEADER_BYTES, Format, page_sizes, same_file, sniff, unchanged

if TYPE_CHECKING:
    from pypdf import PdfWriter

log = logging.getLogger("ocrpool")

MERGEABLE = frozenset(
    {ExportFormat.PDF, ExportFormat.PDF_NO_IMG, ExportFormat.HOCR, ExportFormat.TXT}
)
"""Export formats a split document's page jobs can be merged into one file of."""

_BLANK_POINTS = (612.0, 792.0)
"""A US Letter page, for a failed page that cannot be shown as it was."""


def merge_exports(
    formats: Sequence[ExportFormat], parts: Sequence[tuple[PageSpan, tuple[Export, ...] | None]]
) -> tuple[Export, ...]:
    """``formats`` as one export each from ``parts``: each span with its exports, or
    ``None`` where its job failed."""
    merged = []
    for fmt in formats:
        pieces = [(span, _find(exports, fmt)) for span, exports in parts]
        if fmt is ExportFormat.TXT:
            merged.append(Export(fmt, b"".join(data or b"" for _, data in pieces)))
        elif fmt is ExportFormat.HOCR:
            merged.append(Export(fmt, _merge_hocr(pieces)))
        else:
            merged.append(Export(fmt, _merge_pdf(pieces)))
    return tuple(merged)


def _find(exports: tuple[Export, ...] | None, fmt: ExportFormat) -> bytes | None:
    for export in exports or ():
        if export.format is fmt:
            return export.data
    return None


def _merge_pdf(pieces: Sequence[tuple[PageSpan, bytes | None]]) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for span, data in pieces:
        if data is None:
            data = _original_pages(span)
        if data is None:
            for _ in range(span.count):
                writer.add_blank_page(*_BLANK_POINTS)
            continue
        for page in PdfReader(io.BytesIO(data)).pages:
            writer.add_page(page)
    return _written(writer)


def _original_pages(span: PageSpan) -> bytes | None:
    """A PDF of just the span's pages as they are in the input; ``None`` when that cannot
    be had (Pillow missing for a TIFF, the file unreadable, or no longer the file split:
    another file's pages would stand in for the document's)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError

    try:
        with open(span.path, "rb") as handle:
            if not _the_file_split(span, os.fstat(handle.fileno())):
                return None
            if sniff(handle.read(HEADER_BYTES)) is not Format.PDF:
                return _images_as_pdf(span, handle)
            writer = PdfWriter()
            for page in PdfReader(handle).pages[span.start : span.start + span.count]:
                writer.add_page(page)
            return _written(writer)
    except (OSError, ValueError, PyPdfError):
        return None


def _the_file_split(span: PageSpan, info: os.stat_result) -> bool:
    """Whether the file read is the one the span's document was split from."""
    return span.stamp is None or same_file(info, span.stamp)


def _images_as_pdf(span: PageSpan, handle: BinaryIO) -> bytes | None:
    try:
        from PIL import Image, ImageSequence
    except ImportError:
        return None
    handle.seek(0)
    with Image.open(handle) as image:
        frames = [
            frame.convert("RGB")
            for index, frame in enumerate(ImageSequence.Iterator(image))
            if span.start <= index < span.start + span.count
        ]
    if not frames:
        return None
    out = io.BytesIO()
    frames[0].save(out, "PDF", save_all=True, append_images=frames[1:])
    return out.getvalue()


def _written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


_HOCR_PAGE = re.compile(rb"<div\b[^>]*?\sclass=(['\"])ocr_page\1")
_HOCR_ID = re.compile(rb"(\bid=['\"][A-Za-z]+_)\d+(?=[_'\"])")
"""An element id whose first number is its page's (``page_2``, ``word_2_14``), as
Aspose and Tesseract number them, each counting from 1 in its own file."""
_HOCR_PPAGENO = re.compile(rb"\bppageno \d+")
_HOCR_PAGE_COUNT = re.compile(rb"(name=(['\"])ocr-number-of-pages\2\s+content=(['\"]))\d+")


@dataclass(frozen=True)
class _Hocr:
    """One hOCR file cut at its pages: what comes before the first ``ocr_page`` div,
    each page div, the whitespace between pages, and what follows the last."""

    head: bytes
    pages: tuple[bytes, ...]
    gap: bytes
    tail: bytes


def _merge_hocr(pieces: Sequence[tuple[PageSpan, bytes | None]]) -> bytes:
    """One hOCR document: each span's page divs in order, their ids and ``ppageno``
    renumbered for their place in the document; a span whose job failed (or whose hOCR
    does not hold its pages) as empty pages."""
    cut = [(span, _cut_hocr(data, span)) for span, data in pieces]
    frame = next((hocr for _, hocr in cut if hocr is not None), None)
    if frame is None:
        return b""
    pages: list[bytes] = []
    sizes: list[tuple[int, int]] | None = None
    for span, hocr in cut:
        if hocr is None:
            if sizes is None:
                same = unchanged(span.path, span.stamp)
                sizes = (page_sizes(span.path) if same else None) or []
            pages.extend(_empty_page(sizes, number) for number in span.numbers)
            continue
        for number, page in zip(span.numbers, hocr.pages, strict=True):
            page = _HOCR_ID.sub(rb"\g<1>%d" % number, page)
            pages.append(_HOCR_PPAGENO.sub(b"ppageno %d" % (number - 1), page, count=1))
    head = _HOCR_PAGE_COUNT.sub(rb"\g<1>%d" % len(pages), frame.head)
    return head + frame.gap.join(pages) + frame.tail


def _cut_hocr(data: bytes | None, span: PageSpan) -> _Hocr | None:
    if data is None:
        return None
    starts = [found.start() for found in _HOCR_PAGE.finditer(data)]
    end = data.rfind(b"</body>")
    if len(starts) != span.count or end < starts[-1]:
        log.warning("hOCR of %s has no %d pages: left empty in the merged file", span, span.count)
        return None
    bounds = [*starts, end]
    pages = tuple(data[a:b].rstrip() for a, b in itertools.pairwise(bounds))
    indent = data[data.rfind(b"\n", 0, starts[0]) + 1 : starts[0]]
    gap = b"\n" + (indent if not indent.strip() else b"")
    return _Hocr(data[: starts[0]], pages, gap, data[starts[-1] + len(pages[-1]) :])


def _empty_page(sizes: Sequence[tuple[int, int]], number: int) -> bytes:
    """The ``ocr_page`` of a page that failed: no text, its size when the input says."""
    box = ""
    if number <= len(sizes):
        width, height = sizes[number - 1]
        box = f"bbox 0 0 {width} {height}; "
    title = f"{box}ppageno {number - 1}"
    return f'<div class="ocr_page" id="page_{number}" title="{title}"></div>'.encode()
