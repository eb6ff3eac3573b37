"""Split documents on the real engine: page spans read exactly what the whole document
reads, page for page, and the merged searchable PDF and hOCR hold every page."""

from __future__ import annotations

import io
from pathlib import Path
from xml.etree import ElementTree

import pytest
from pypdf import PdfReader

from ocrpool import OcrPool, OcrResult

pytestmark = pytest.mark.aspose

MULTIPAGE = Path(__file__).parent.parent / "examples" / "images" / "multipage-3.tif"


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The shipped 3-page TIFF, and the same pages as an image-only PDF."""
    from PIL import Image, ImageSequence

    pdf = tmp_path_factory.mktemp("pages") / "multipage-3.pdf"
    with Image.open(MULTIPAGE) as image:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(image)]
        dpi = image.info.get("dpi", (300, 300))[0]
    frames[0].save(pdf, "PDF", save_all=True, append_images=frames[1:], resolution=dpi)
    return [str(MULTIPAGE), str(pdf)]


def _recognise(documents: list[str], **settings: object) -> list[OcrResult]:
    options = {"exports": ["pdf", "hocr"]}
    with OcrPool(spares=0, engine="aspose", engine_options=options, **settings) as pool:
        futures = [pool.submit(document) for document in documents]
        return [future.result() for future in futures]


def test_split_documents_read_exactly_as_whole_ones(documents: list[str]) -> None:
    split = _recognise(documents, workers=2, split_min_pages=2)
    whole = _recognise(documents, workers=1, split_pages=False)
    for parts, one in zip(split, whole, strict=True):
        assert parts.ok and one.ok
        assert len(parts.pages) == 3
        assert [page.text for page in parts.pages] == [page.text for page in one.pages]
        assert len(parts.attempts) == 3 and len(one.attempts) == 1
        assert len({attempt.worker_pid for attempt in parts.attempts}) == 2
        assert "This is a lot of 12 point text" in parts.pages[0].text
        reader = PdfReader(io.BytesIO(parts.export("pdf")))
        assert len(reader.pages) == 3
        first = " ".join(reader.pages[0].extract_text().split())
        assert "This is a lot of 12 point text" in first
        assert _hocr_pages(parts) == _hocr_pages(one)


def _hocr_pages(result: OcrResult) -> list[tuple[str | None, list[str]]]:
    """Each ``ocr_page`` div of the result's hOCR: its id and its words."""
    root = ElementTree.fromstring(result.export("hocr"))
    pages = root.iter("{http://www.w3.org/1999/xhtml}div")
    return [
        (page.get("id"), "".join(page.itertext()).split())
        for page in pages
        if page.get("class") == "ocr_page"
    ]
