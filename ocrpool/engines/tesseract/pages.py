"""An input's pages as images for Tesseract, decoded in the worker.

Images are decoded by Pillow, every page of a TIFF in turn (one page for the other
formats); PDF pages are rendered by PDFium (pypdfium2) at the engine's ``dpi``. One page
is decoded at a time, so a long document costs the memory of one page. What cannot be
decoded is ``InvalidInput`` naming the input.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ocrpool.errors import InvalidInput
from ocrpool.formats import Format

_POINTS_PER_INCH = 72
_MODES = ("1", "L", "RGB", "RGBA")
"""Pillow modes tesserocr hands to Tesseract as they are; others are converted to RGB."""


@dataclass(frozen=True)
class PageImage:
    image: Any
    """A ``PIL.Image.Image``."""
    dpi: int
    """The resolution the image declares, or the engine's ``dpi`` when it declares none."""


def read_pages(
    source: str | bytes, fmt: Format, label: str, dpi: int, span: range | None = None
) -> Iterator[PageImage]:
    """The pages of ``source`` (a path or the file's bytes), one at a time; only those
    whose index (from 0) is in ``span`` when one is given (a page job)."""
    if fmt is Format.PDF:
        return _pdf_pages(source, label, dpi, span)
    return _image_pages(source, fmt, label, dpi, span)


def _image_pages(
    source: str | bytes, fmt: Format, label: str, dpi: int, span: range | None
) -> Iterator[PageImage]:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            count = getattr(image, "n_frames", 1) if fmt is Format.TIFF else 1
            for index in _within(range(count), span):
                image.seek(index)
                image.load()
                page = image.copy() if image.mode in _MODES else image.convert("RGB")
                yield PageImage(page, _declared_dpi(image.info, dpi))
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"{label}: cannot be decoded ({exc})", input=label) from None


def _declared_dpi(info: Mapping[Any, Any], default: int) -> int:
    declared: Any = info.get("dpi")
    try:
        horizontal = round(float(declared[0]))
    except (TypeError, ValueError, IndexError, OverflowError):
        return default
    return horizontal if horizontal > 1 else default


def _within(pages: range, span: range | None) -> range:
    return (
        pages if span is None else range(max(pages.start, span.start), min(pages.stop, span.stop))
    )


def _pdf_pages(
    source: str | bytes, label: str, dpi: int, span: range | None
) -> Iterator[PageImage]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(source)
    except pdfium.PdfiumError as exc:
        raise InvalidInput(f"{label}: PDFium cannot open it ({exc})", input=label) from None
    try:
        for index in _within(range(len(document)), span):
            try:
                page = document[index]
            except pdfium.PdfiumError as exc:  # a page tree that loops, or nests too deep
                raise InvalidInput(
                    f"{label}: PDFium cannot load page {index + 1} ({exc})", input=label
                ) from None
            try:
                bitmap = page.render(scale=dpi / _POINTS_PER_INCH, grayscale=True)
                yield PageImage(bitmap.to_pil(), dpi)
            except pdfium.PdfiumError as exc:
                raise InvalidInput(
                    f"{label}: PDFium cannot render page {index + 1} ({exc})", input=label
                ) from None
            finally:
                page.close()
    finally:
        document.close()
