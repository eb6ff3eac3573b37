"""Exports rendered by Tesseract's own renderers (the engine option ``exports``).

tesserocr exposes Tesseract's renderers only through ``ProcessPages``, which recognises
the pages itself: the engine writes the pages it recognised (turned upright, PDF pages
rendered) as PNG files with their resolution, and ``ProcessPages`` reads them back as
one document per format. So asking for exports costs about one more recognition of
each page, whatever the number of formats (all but ``pdf-no-img`` next to ``pdf`` come
from one pass).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocrpool.errors import EngineOptionError, ExportFailed
from ocrpool.exports import Export, ExportFormat, parse_formats

RENDERERS = {
    ExportFormat.PDF: ("tessedit_create_pdf", ".pdf"),
    ExportFormat.PDF_NO_IMG: ("tessedit_create_pdf", ".pdf"),
    ExportFormat.HOCR: ("tessedit_create_hocr", ".hocr"),
    ExportFormat.TXT: ("tessedit_create_txt", ".txt"),
}
"""Each format's renderer switch and the suffix Tesseract gives its file."""
_TEXT_ONLY = "textonly_pdf"


def supported_formats(names: Sequence[str]) -> tuple[ExportFormat, ...]:
    """The formats named, or ``EngineOptionError`` for one Tesseract has no renderer for."""
    try:
        formats = parse_formats(names)
    except (TypeError, ValueError) as exc:
        raise EngineOptionError(str(exc), option="exports") from None
    unsupported = [fmt.value for fmt in formats if fmt not in RENDERERS]
    if unsupported:
        choices = ", ".join(fmt.value for fmt in RENDERERS)
        raise EngineOptionError(
            f"the tesseract engine cannot export {', '.join(unsupported)}; it exports {choices}",
            option="exports",
        )
    return formats


def render(
    api: Any, pages: Sequence[Path], formats: Sequence[ExportFormat], label: str, folder: Path
) -> tuple[Export, ...]:
    """``pages`` (PNG files in ``folder``) as one document per format, in that order."""
    if not formats:
        return ()
    if len(pages) == 1:
        listing = pages[0]
    else:
        listing = folder / "pages.txt"
        listing.write_text("".join(f"{page}\n" for page in pages))
    documents: dict[ExportFormat, bytes] = {}
    passes: list[list[ExportFormat]] = [
        [fmt for fmt in formats if fmt is not ExportFormat.PDF_NO_IMG]
    ]
    if ExportFormat.PDF_NO_IMG in formats:
        passes.append([ExportFormat.PDF_NO_IMG])
    for number, wanted in enumerate(passes):
        if wanted:
            base = folder / f"pass{number}"
            documents.update(_one_pass(api, listing, pages, wanted, label, base))
    return tuple(Export(fmt, documents[fmt]) for fmt in formats)


def _one_pass(
    api: Any,
    listing: Path,
    pages: Sequence[Path],
    formats: Sequence[ExportFormat],
    label: str,
    base: Path,
) -> dict[ExportFormat, bytes]:
    switches = {RENDERERS[fmt][0] for fmt in formats}
    text_only = ExportFormat.PDF_NO_IMG in formats
    for switch in {name for name, _ in RENDERERS.values()}:
        api.SetVariable(switch, "1" if switch in switches else "0")
    api.SetVariable(_TEXT_ONLY, "1" if text_only else "0")
    try:
        done = api.ProcessPages(str(base), str(listing))
    except RuntimeError as exc:
        raise _failed(label, formats, f"Tesseract's renderer failed: {exc}") from None
    finally:
        for switch in switches:
            api.SetVariable(switch, "0")
        api.SetVariable(_TEXT_ONLY, "0")
    if not done:
        raise _failed(label, formats, "Tesseract's renderer failed")
    documents = {}
    for fmt in formats:
        written = base.with_name(base.name + RENDERERS[fmt][1])
        try:
            data = written.read_bytes()
        except OSError:
            raise _failed(label, [fmt], "Tesseract wrote no file") from None
        if fmt is ExportFormat.HOCR:
            # Each page's title names the file it was read from: a temporary one.
            # A name's bytes that are not UTF-8 (lone surrogates) show as U+FFFD.
            shown = html.escape(label.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
            for page in pages:
                data = data.replace(str(page).encode(), shown.encode())
        documents[fmt] = data
    return documents


def _failed(label: str, formats: Sequence[ExportFormat], reason: str) -> ExportFailed:
    names = ", ".join(fmt.value for fmt in formats)
    return ExportFailed(f"{label}: no {names} export: {reason}", format=names, input=label)
