"""One export file from the exports of a split document's page jobs, pages in order.

Runs in the thread that finishes a document (never the supervisor's): PDFs are joined
with pypdf, text by concatenation. A span whose job failed is filled so the document
keeps its page count: in a PDF, the original page without a text layer (a PDF input's
own page; a TIFF's page image through Pillow when it is installed, else a blank page);
in text, nothing. Formats not listed in ``MERGEABLE`` are never split: the pool renders
such a document in one job.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ocrpool.engines.base import PageSpan
from ocrpool.exports import Export, ExportFormat
from ocrpool.formats import Format, sniff_file

if TYPE_CHECKING:
    from pypdf import PdfWriter

MERGEABLE = frozenset({ExportFormat.PDF, ExportFormat.PDF_NO_IMG, ExportFormat.TXT})
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
    be had (Pillow missing for a TIFF, the file unreadable)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError

    try:
        if sniff_file(span.path) is not Format.PDF:
            return _images_as_pdf(span)
        writer = PdfWriter()
        for page in PdfReader(span.path).pages[span.start : span.start + span.count]:
            writer.add_page(page)
        return _written(writer)
    except (OSError, ValueError, PyPdfError):
        return None


def _images_as_pdf(span: PageSpan) -> bytes | None:
    try:
        from PIL import Image, ImageSequence
    except ImportError:
        return None
    with Image.open(span.path) as image:
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
