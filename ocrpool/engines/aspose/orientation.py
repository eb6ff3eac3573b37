"""Pages turned upright before recognition (the engine option ``rotate_pages``).

Aspose reads a page scanned sideways as nothing and an upside-down one as noise, and
even a skew of a few degrees costs it most of the words. ``calculate_skew`` measures
each page's angle (90, 180 or 270 for a page turned, a few degrees for a skewed one),
and recognising with a ``rotate`` filter of that angle reads the page upright. A filter
applies to a whole input, so the pages of a document are recognised in runs of equal
angle, one call per run: one call in all for the usual document whose pages agree.

Angles under ``MIN_ROTATION`` are left alone: Aspose reads such pages as well as
upright ones, and resampling them for nothing cost eurotext.tif (0.78°) a bracket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocrpool.engines.base import PageSpan

MIN_ROTATION = 1.0
"""Degrees. phototest.tif skewed by 0.5° and 1° read the same without correction; from
1.5° words are lost (measured with Aspose 26.10)."""


@dataclass(frozen=True)
class PageRun:
    """Consecutive pages (``first`` counted from 0) to turn by the same ``angle``."""

    first: int
    count: int
    angle: float


def page_runs(angles: Sequence[float]) -> tuple[PageRun, ...]:
    """The pages of a document grouped into runs of equal angle, in page order."""
    runs: list[PageRun] = []
    for page, angle in enumerate(angles):
        if runs and runs[-1].angle == angle:
            runs[-1] = PageRun(runs[-1].first, runs[-1].count + 1, angle)
        else:
            runs.append(PageRun(page, 1, angle))
    return tuple(runs)


def recognize_upright(
    ocr: Any, api: Any, settings: Any, input_type: Any, path: str, span: PageSpan | None = None
) -> tuple[Any, tuple[float, ...]]:
    """Aspose's output for the document at ``path`` (or the pages of ``span``) with every
    page turned upright, and the angle each page was turned by (0 when it was upright, or
    nearly)."""
    from aspose.ocr.models.preprocessingfilters import PreprocessingFilter

    start = 0 if span is None else span.start
    measuring = ocr.OcrInput(input_type)
    add_pages(measuring, path, span)
    measured = (float(skew.angle) for skew in api.calculate_skew(measuring))
    angles = tuple(angle if abs(angle) >= MIN_ROTATION else 0.0 for angle in measured)
    runs = page_runs(angles) or (PageRun(0, 0, 0.0),)
    output = ocr.OcrOutput()
    for run in runs:
        filters = PreprocessingFilter()
        if run.angle:
            filters.add(PreprocessingFilter.rotate(run.angle))
        ocr_input = ocr.OcrInput(input_type, filters)
        if len(runs) == 1:
            add_pages(ocr_input, path, span)
        else:
            ocr_input.add(path, start + run.first, run.count)
        for result in api.recognize(ocr_input, settings):
            output.append(result)
    return output, angles


def add_pages(ocr_input: Any, path: str, span: PageSpan | None) -> None:
    """Add the file at ``path`` to ``ocr_input``: all of it, or the pages of ``span``
    (Aspose's ``add(path, start_page, pages_number)`` counts pages from 0 and reads only
    those pages of a TIFF or PDF)."""
    if span is None:
        ocr_input.add(path)
    else:
        ocr_input.add(path, span.start, span.count)
