"""Offline spell-check of recognised text (the engine option ``spellcheck``).

``AsposeOcr.correct_spelling`` loads its dictionary on every call (about 1 s, even for
an empty text), so a document is corrected in one call, its pages joined by form
feeds, which the corrector keeps as they are.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ocrpool.errors import EngineError
from ocrpool.results import Page

PAGE_BREAK = "\f"


def correct_pages(
    api: Any, pages: tuple[Page, ...], language: Any, dictionary: str
) -> tuple[Page, ...]:
    """``pages`` with ``corrected_text`` set; ``dictionary`` is a user word list or ``""``."""
    texts = [page.text for page in pages]
    if all(page.empty for page in pages):
        corrected = texts
    else:
        corrected = api.correct_spelling(PAGE_BREAK.join(texts), language, dictionary).split(
            PAGE_BREAK
        )
    if len(corrected) != len(pages):
        raise EngineError(
            f"spell-check returned {len(corrected)} pages for {len(pages)}: "
            "it did not keep the page breaks"
        )
    return tuple(
        dataclasses.replace(page, corrected_text=text)
        for page, text in zip(pages, corrected, strict=True)
    )
