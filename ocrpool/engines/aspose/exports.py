"""Exports rendered by Aspose (the engine option ``exports``), as bytes for the caller.

``save_multipage_document`` writes one document for all the pages of a result. It is
written into a private temporary folder and read back, and two of Aspose's habits are
smoothed over. Markdown comes as an index plus one file per page in a ``pages/``
folder: ocrpool joins the pages into one document, separated by thematic breaks (Aspose
ends each page with a ``---`` right under its last line, which would make that line a
heading). HTML is silently not written at all when any page has no text: pages without
text are left out of it (a document without any text fails with ``ExportFailed``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocrpool.engines.aspose.errors import detail
from ocrpool.errors import ExportFailed
from ocrpool.exports import Export, ExportFormat
from ocrpool.results import Page

SAVE_FORMATS = {
    ExportFormat.PDF: "PDF",
    ExportFormat.PDF_NO_IMG: "PDF_NO_IMG",
    ExportFormat.HOCR: "HOCR",
    ExportFormat.DOCX: "DOCX",
    ExportFormat.MD: "MD",
    ExportFormat.HTML: "HTML",
    ExportFormat.JSON: "JSON",
    ExportFormat.XML: "XML",
    ExportFormat.TXT: "TEXT",
}
"""Each export format's ``aspose.ocr.SaveFormat`` member."""

MD_PAGE_BREAK = b"\n\n---\n\n"
"""Between the pages of a Markdown export: a thematic break (a blank line before it)."""


def render(
    ocr: Any,
    api: Any,
    output: Any,
    pages: Sequence[Page],
    formats: Sequence[ExportFormat],
    label: str,
) -> tuple[Export, ...]:
    """Aspose's ``output`` (whose plain pages are ``pages``) in each of ``formats``."""
    if not formats:
        return ()
    exports = []
    with tempfile.TemporaryDirectory(prefix="ocrpool-export-") as folder:
        for fmt in formats:
            results = output
            if fmt is ExportFormat.HTML:
                results = ocr.OcrOutput()
                for result, page in zip(output, pages, strict=True):
                    if not page.empty:
                        results.append(result)
                if not len(results):
                    raise _failed(label, fmt, "no page has text, and Aspose writes no HTML then")
            target = Path(folder, fmt.name, f"document{fmt.suffix}")
            target.parent.mkdir()
            try:
                api.save_multipage_document(
                    str(target), getattr(ocr.SaveFormat, SAVE_FORMATS[fmt]), results
                )
            except RuntimeError as exc:
                raise _failed(
                    label, fmt, f"Aspose could not write it: {detail(str(exc))}"
                ) from None
            exports.append(Export(fmt, _read(target, fmt, len(results), label)))
    return tuple(exports)


def _read(target: Path, fmt: ExportFormat, page_count: int, label: str) -> bytes:
    try:
        if fmt is ExportFormat.MD:
            pages = (target.parent / "pages" / f"page{n}.md" for n in range(page_count))
            texts = (page.read_bytes().strip().removesuffix(b"---").strip() for page in pages)
            return MD_PAGE_BREAK.join(texts) + b"\n"
        return target.read_bytes()
    except FileNotFoundError as exc:
        raise _failed(
            label, fmt, f"Aspose wrote no file ({os.path.basename(exc.filename)})"
        ) from None


def _failed(label: str, fmt: ExportFormat, reason: str) -> ExportFailed:
    return ExportFailed(f"{label}: no {fmt.value} export: {reason}", format=fmt.value, input=label)
