"""Split documents on the real engine: page spans read exactly what the whole document
reads, page for page, and the merged searchable PDF and hOCR hold every page; the
issue's 40-page case completes with the defaults."""

from __future__ import annotations

import io
from pathlib import Path
from xml.etree import ElementTree

import pytest
from pypdf import PdfReader
from test_cli_run import last_by_path, run

from ocrpool import OcrPool, OcrResult
from ocrpool.error_codes import ExitCode

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
    # The first document's first two pages go to the two idle workers; every later page
    # goes to whichever worker is free first, so the second document's pages may all run
    # on one while the other reads a slow page of the first (seen in CI).
    assert len({attempt.worker_pid for attempt in split[0].attempts}) == 2
    for parts, one in zip(split, whole, strict=True):
        assert parts.ok and one.ok
        assert len(parts.pages) == 3
        assert [page.text for page in parts.pages] == [page.text for page in one.pages]
        assert len(parts.attempts) == 3 and len(one.attempts) == 1
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


@pytest.mark.slow
def test_the_issues_40_page_case_completes_with_the_defaults(tmp_path: Path) -> None:
    """The issue's case, rebuilt from the shipped scans as ``python -m benchmarks pages``
    builds it (single pages, then a 40-page TIFF cycling through every page of every
    scan): ``ocrpool run DIR --out out.jsonl --workers 2`` with every other setting at its
    default records every input, and the document's 40 pages come back in order: each
    page reads as the same scan page does in every other cycle, and as that scan alone."""
    from benchmarks.pages import SCANS, build_corpus

    inputs = build_corpus(tmp_path / "in", 40)
    out = tmp_path / "out.jsonl"
    assert run(str(tmp_path / "in"), "--out", str(out), "--workers", "2") == ExitCode.OK
    by_path = last_by_path(out)
    assert sorted(by_path) == sorted(inputs)
    document = by_path[inputs[-1]]
    assert document["ok"] and len(document["pages"]) == 40
    assert len({attempt["worker_pid"] for attempt in document["attempts"]}) == 2
    texts = [page["text"] for page in document["pages"]]
    frames = [_frames(scan) for scan in SCANS]
    cycle = sum(frames)
    assert texts == (texts[:cycle] * 40)[:40]
    firsts = [sum(frames[:number]) for number in range(len(SCANS))]
    singles = [by_path[single]["pages"][0]["text"] for single in inputs[:-1]]
    assert [texts[first] for first in firsts] == singles
    assert "This is a lot of 12 point text" in texts[firsts[3]]  # multipage-3.tif's first


def _frames(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return int(getattr(image, "n_frames", 1))
