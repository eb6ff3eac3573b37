"""The aspose engine: input checks and error translation here, recognition in a child.

The real engine runs once, in one spawned child (``engine_session``) that plays every
scenario and returns plain results; pytest itself never imports ``aspose.ocr``.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pypdf
import pytest
from imaging import write_text_image
from PIL import Image

from ocrpool.engines.aspose.child import run_in_child
from ocrpool.engines.aspose.engine import AsposeEngine, check_file, to_recognition
from ocrpool.engines.aspose.errors import translate_error
from ocrpool.engines.aspose.orientation import PageRun, page_runs
from ocrpool.errors import (
    EngineError,
    EngineOptionError,
    ExportFailed,
    InvalidInput,
    ResourceUnavailable,
)
from ocrpool.formats import Format
from ocrpool.results import Recognition

PHOTOTEST = Path(__file__).parent / "data" / "phototest.tif"
UPSIDE_DOWN = Path(__file__).parent / "data" / "phototest-rotated-180.png"
PHOTOTEST_START = "This is a lot of 12 point text"
MISSPELT = ("Quick brwn foxes jumpd", "over the lazzy dogs", "every single day")
MULTIPAGE = Path(__file__).parent.parent / "examples" / "images" / "multipage-3.tif"


def write_bad_inputs(directory: Path) -> dict[str, Path]:
    """One file per kind of bad input, keyed by kind."""
    good = write_text_image(directory / "good.png").read_bytes()
    inputs = {
        "missing": directory / "missing.png",
        "empty": directory / "empty.png",
        "corrupt": directory / "corrupt.png",
        "text": directory / "notes.png",
    }
    inputs["empty"].write_bytes(b"")
    inputs["corrupt"].write_bytes(good[:16] + b"\xff" * 8 + good[24:])  # impossible size
    inputs["text"].write_text("just some text, named like an image\n")
    return inputs


def write_bad_pdfs(directory: Path, image: Path) -> dict[str, Path]:
    """PDFs that pass the header check but hold nothing Aspose can read, keyed by kind."""
    whole = io.BytesIO()
    Image.open(image).save(whole, format="PDF")
    inputs = {"cut-pdf": directory / "cut.pdf", "no-pages-pdf": directory / "none.pdf"}
    inputs["cut-pdf"].write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with inputs["no-pages-pdf"].open("wb") as out:
        pypdf.PdfWriter().write(out)
    return inputs


# ----------------------------------------------------------------- without Aspose


def test_importing_the_engine_does_not_load_aspose() -> None:
    code = "import sys, ocrpool.engines.aspose.engine; print('aspose.ocr' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_bad_inputs_are_refused_before_aspose_sees_them(tmp_path: Path) -> None:
    inputs = write_bad_inputs(tmp_path)
    for kind in ("missing", "empty", "text"):
        with pytest.raises(InvalidInput) as caught:
            check_file(str(inputs[kind]))
        assert str(inputs[kind]) in caught.value.message
        assert caught.value.input == str(inputs[kind])
    with pytest.raises(InvalidInput, match="not a regular file"):
        check_file(str(tmp_path))
    assert check_file(str(inputs["corrupt"])) is Format.PNG  # left for Aspose to reject


def test_a_truncated_png_is_refused(tmp_path: Path) -> None:
    image = write_text_image(tmp_path / "whole.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(image.read_bytes()[:-200])
    assert check_file(str(image)) is Format.PNG
    with pytest.raises(InvalidInput, match="truncated PNG"):
        check_file(str(cut))


def test_pages_of_equal_angle_are_recognised_together() -> None:
    assert page_runs([0.0, 0.0, 90.0, 0.0]) == (
        PageRun(0, 2, 0.0),
        PageRun(2, 1, 90.0),
        PageRun(3, 1, 0.0),
    )
    assert page_runs([]) == ()


def test_bad_export_options_are_refused() -> None:
    with pytest.raises(EngineError, match="unknown export format 'bmp'; choose from: pdf"):
        AsposeEngine(exports=("pdf", "bmp"))
    with pytest.raises(EngineError, match="spellcheck_dictionary needs spellcheck"):
        AsposeEngine(spellcheck_dictionary="words.txt")


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2"])
def test_bad_thread_counts_are_refused(threads: Any) -> None:
    with pytest.raises(EngineError, match="threads"):
        AsposeEngine(threads=threads)


def test_missing_resources_become_resource_unavailable() -> None:
    offline = (
        "Proxy error(\x02\x16\x1a): Please install the 'aspose-ocr-formula-det-v1.ocr' first, "
        'use Resources.FetchResource("aspose-ocr-formula-det-v1.ocr"). '
        "Or set Resources.AllowAutomaticDownloads(true)."
    )
    failed_download = (
        "Proxy error(\x02\x16\x1a): Automatic download of 'aspose-ocr-advanced-recognition-v1.ocr'"
        " failed: Error downloading ...: Name or service not known"
    )
    for message, resource in [
        (offline, "aspose-ocr-formula-det-v1.ocr"),
        (failed_download, "aspose-ocr-advanced-recognition-v1.ocr"),
    ]:
        error = translate_error(message, "/in/a.png", "/in/a.png")
        assert isinstance(error, ResourceUnavailable)
        assert error.resource == resource
        assert "resource_dir" in error.message


def test_open_errors_name_the_input_not_the_temporary_file() -> None:
    message = (
        "Proxy error(\x02\x16\x1a): Error during open file. Path: '/tmp/ocrpool-x1.png'. "
        "---> ArgumentException: Value does not fall within the expected range."
    )
    error = translate_error(message, "/tmp/ocrpool-x1.png", "<120 bytes>")
    assert isinstance(error, InvalidInput)
    assert error.message == (
        "<120 bytes>: Aspose cannot open it (corrupt or unsupported): "
        "ArgumentException: Value does not fall within the expected range."
    )


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("InvalidPdfFileFormatException", "Startxref not found"),
        ("InvalidPasswordException", "Invalid password"),
    ],
)
def test_a_pdf_aspose_cannot_read_is_invalid_input(kind: str, text: str) -> None:
    error = translate_error(f"Proxy error({kind}): {text}", "/in/a.pdf", "/in/a.pdf")
    assert isinstance(error, InvalidInput)
    assert error.message == f"/in/a.pdf: Aspose cannot read it ({kind}): {text}"


def test_other_failures_are_engine_errors() -> None:
    error = translate_error("Proxy error(OutOfMemoryException): boom", "/a.png", "/a.png")
    assert type(error) is EngineError
    assert error.message == "/a.png: boom"


def test_evaluation_banner_is_stripped_and_reported() -> None:
    box = SimpleNamespace(x=39, y=92, width=538, height=23)
    page = SimpleNamespace(
        recognition_text="This is a lot\nof text\n ************* Trial Licenses ************* \n",
        warnings=["Trial Licenses"],
        recognition_lines_result=[
            SimpleNamespace(text_in_line="This is a lot", line=box, confidence=0)
        ],
    )
    recognition = to_recognition([page])
    assert recognition.text == "This is a lot\nof text"
    assert recognition.evaluation_mode
    assert recognition.pages[0].lines[0].box == (39, 92, 538, 23)
    licensed = SimpleNamespace(recognition_text="Text\n", warnings=[], recognition_lines_result=[])
    assert not to_recognition([licensed]).evaluation_mode


# ----------------------------------------------------------------- with Aspose, in a child


def play_scenarios(workdir: str) -> dict[str, Any]:
    """Runs in the child: every scenario on one started engine. Errors are returned."""
    directory = Path(workdir)
    image = write_text_image(directory / "words.png")
    bad = write_bad_inputs(directory)
    engine = AsposeEngine()
    engine.start()
    results: dict[str, Any] = {}

    def attempt(key: str, action: Any) -> None:
        try:
            results[key] = action()
        except Exception as exc:
            results[key] = exc

    attempt("image", lambda: engine.recognize(str(image)))
    attempt("bytes", lambda: engine.recognize(image.read_bytes()))
    attempt("tiff", lambda: engine.recognize(str(MULTIPAGE)))
    attempt("tiff-bytes", lambda: engine.recognize(MULTIPAGE.read_bytes()))
    odd = os.fsdecode(os.fsencode(str(directory)) + b"/caf\xe9.png")
    Path(odd).write_bytes(image.read_bytes())
    attempt("not-utf8-name", lambda: engine.recognize(odd))
    for kind, path in bad.items():
        attempt(kind, lambda path=path: engine.recognize(str(path)))
    attempt("corrupt-bytes", lambda: engine.recognize(bad["corrupt"].read_bytes()))
    for kind, path in write_bad_pdfs(directory, image).items():
        attempt(kind, lambda path=path: engine.recognize(str(path)))
    engine.close()

    formula = AsposeEngine(detect_areas="formula", warmup=False)
    formula.start()
    attempt("formula", lambda: formula.recognize(str(PHOTOTEST)))
    formula.close()
    license_file = directory / "bad.lic"
    license_file.write_text("not a license")
    attempt("bad-license", AsposeEngine(license=str(license_file), warmup=False).start)
    attempt("no-license", AsposeEngine(license=str(directory / "none.lic")).start)
    attempt("bad-language", AsposeEngine(language="klingon", warmup=False).start)
    attempt(
        "bad-detection-level",
        AsposeEngine(language_detection_level="by_line", warmup=False).start,
    )
    return results


def write_turned_pages(directory: Path) -> dict[str, Path]:
    """phototest.tif turned by quarter turns (PIL: counter-clockwise) and skewed by 3°."""
    page = Image.open(PHOTOTEST).convert("L")
    turned = {
        "left": page.rotate(90, expand=True),
        "right": page.rotate(-90, expand=True),
        "skewed": page.rotate(3, expand=True, fillcolor=255),
    }
    for name, image in turned.items():
        image.save(directory / f"{name}.png")
    return {name: directory / f"{name}.png" for name in turned} | {"upside-down": UPSIDE_DOWN}


def play_option_scenarios(workdir: str) -> dict[str, Any]:
    """Runs in the child: exports, rotation and spell-check on real Aspose output."""
    directory = Path(workdir)
    misspelt = write_text_image(directory / "misspelt.png", MISSPELT)
    blank = write_text_image(directory / "blank.png", ("",))
    turned = write_turned_pages(directory)
    results: dict[str, Any] = {}

    def attempt(key: str, engine: AsposeEngine, path: Path) -> None:
        try:
            results[key] = engine.recognize(str(path))
        except Exception as exc:
            results[key] = exc

    engine = AsposeEngine(exports=("pdf", "hocr", "md", "html"), rotate_pages=True, warmup=False)
    engine.start()
    attempt("multipage", engine, MULTIPAGE)
    attempt("blank", engine, blank)
    for name, path in turned.items():
        attempt(name, engine, path)
    engine.close()

    spelling = AsposeEngine(rotate_pages=False, spellcheck="eng", warmup=False)
    spelling.start()
    attempt("misspelt", spelling, misspelt)
    attempt("left-not-rotated", spelling, turned["left"])
    spelling.close()
    dictionary = directory / "words.txt"
    dictionary.write_text("brwn 100000\n")
    own_words = AsposeEngine(
        rotate_pages=False, spellcheck="eng", spellcheck_dictionary=str(dictionary), warmup=False
    )
    own_words.start()
    attempt("misspelt-with-dictionary", own_words, misspelt)
    own_words.close()
    return results


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("aspose-options")
    results: dict[str, Any] = run_in_child(play_option_scenarios, str(workdir), timeout=240)
    return results


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("aspose")
    results: dict[str, Any] = run_in_child(play_scenarios, str(workdir), timeout=240)
    results["workdir"] = workdir
    return results


@pytest.mark.aspose
def test_recognises_the_first_words_of_a_generated_image(session: dict[str, Any]) -> None:
    recognition = session["image"]
    assert recognition.pages[0].text.startswith("Quick brown"), recognition
    assert recognition.evaluation_mode  # CI has no license
    assert "Trial Licenses" not in recognition.text


@pytest.mark.aspose
def test_bytes_give_the_same_text_as_the_file(session: dict[str, Any]) -> None:
    assert session["bytes"].text == session["image"].text


@pytest.mark.aspose
def test_a_name_that_is_not_utf8_gives_the_same_text(session: dict[str, Any]) -> None:
    """Aspose takes a path as text: such a name reached .NET with U+FFFD for its bytes,
    and every input so named failed with ``FileNotFoundException`` (``InvalidInput``)."""
    assert session["not-utf8-name"].text == session["image"].text


@pytest.mark.aspose
def test_multi_page_tiff_gives_one_page_per_page(session: dict[str, Any]) -> None:
    assert len(session["tiff"].pages) == 3
    assert session["tiff"].pages[0].text.startswith("This is a lot of 12 point text")
    assert session["tiff-bytes"].pages == session["tiff"].pages


@pytest.mark.aspose
@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt", "text"])
def test_bad_input_is_invalid_input_naming_the_file(session: dict[str, Any], kind: str) -> None:
    error = session[kind]
    assert isinstance(error, InvalidInput), error
    assert str(session["workdir"]) in error.message


@pytest.mark.aspose
@pytest.mark.parametrize("kind", ["cut-pdf", "no-pages-pdf"])
def test_a_pdf_cut_short_or_of_no_pages_is_invalid_input(
    session: dict[str, Any], kind: str
) -> None:
    """Aspose raised for the first (an ``EngineError``) and read nothing from the second
    (a success of no pages)."""
    error = session[kind]
    assert isinstance(error, InvalidInput), error
    assert str(session["workdir"]) in error.message


@pytest.mark.aspose
def test_corrupt_bytes_are_named_as_bytes(session: dict[str, Any]) -> None:
    error = session["corrupt-bytes"]
    assert isinstance(error, InvalidInput)
    assert re.match(r"<\d+ bytes>: Aspose cannot open it", error.message), error.message


@pytest.mark.aspose
def test_offline_resource_is_resource_unavailable(session: dict[str, Any]) -> None:
    error = session["formula"]
    assert isinstance(error, ResourceUnavailable), error
    assert error.resource == "aspose-ocr-formula-det-v1.ocr"


@pytest.mark.aspose
def test_bad_options_fail_start_clearly(session: dict[str, Any]) -> None:
    assert isinstance(session["bad-license"], EngineError)
    assert "Aspose rejected the license file" in session["bad-license"].message
    assert isinstance(session["no-license"], EngineError)
    assert "does not exist" in session["no-license"].message
    assert isinstance(session["bad-language"], EngineOptionError)
    assert session["bad-language"].option == "language"
    assert "ENG" in session["bad-language"].message
    assert isinstance(session["bad-detection-level"], EngineOptionError)
    assert session["bad-detection-level"].option == "language_detection_level"
    assert "BY_PAGE" in session["bad-detection-level"].message


@pytest.mark.aspose
def test_the_searchable_pdf_holds_every_page_and_its_words(options: dict[str, Any]) -> None:
    recognition: Recognition = options["multipage"]
    assert [e.format.value for e in recognition.exports] == ["pdf", "hocr", "md", "html"]
    pdf = pypdf.PdfReader(io.BytesIO(recognition.exports[0].data))
    assert len(pdf.pages) == 3  # one document for the whole TIFF
    words = " ".join(pdf.pages[0].extract_text().split())
    assert words.startswith(PHOTOTEST_START)
    assert "brown" in pdf.pages[1].extract_text()


@pytest.mark.aspose
def test_hocr_parses_and_has_word_boxes(options: dict[str, Any]) -> None:
    hocr = ElementTree.fromstring(options["multipage"].exports[1].data)
    spans = [e for e in hocr.iter() if e.get("class") == "ocrx_word"]
    assert spans
    assert (spans[0].text or "").startswith(PHOTOTEST_START)
    box = re.match(r"bbox (\d+) (\d+) (\d+) (\d+)", spans[0].get("title", ""))
    assert box is not None
    x0, y0, x1, y1 = map(int, box.groups())
    assert x0 < x1 and y0 < y1
    pages = [e for e in hocr.iter() if e.get("class") == "ocr_page"]
    assert len(pages) == 3


@pytest.mark.aspose
def test_markdown_and_html_are_one_document(options: dict[str, Any]) -> None:
    markdown = options["multipage"].exports[2].data.decode()
    assert markdown.startswith(PHOTOTEST_START)
    assert markdown.count("\n---\n") == 2  # three pages
    html = options["multipage"].exports[3].data.decode()
    assert "This is a lot of 12 point text" in html and "brown" in html


@pytest.mark.aspose
def test_a_page_without_text_is_flagged_and_html_of_nothing_fails(options: dict[str, Any]) -> None:
    assert options["multipage"].pages[2].empty
    assert not options["multipage"].pages[0].empty
    error = options["blank"]
    assert isinstance(error, ExportFailed), error
    assert error.format == "html"
    assert "no page has text" in error.message


@pytest.mark.aspose
@pytest.mark.parametrize(
    ("name", "rotation"), [("left", 270.0), ("right", 90.0), ("upside-down", 180.0)]
)
def test_turned_pages_are_read_upright(options: dict[str, Any], name: str, rotation: float) -> None:
    page = options[name].pages[0]
    assert page.text.startswith(PHOTOTEST_START), page.text
    assert page.rotation == rotation


@pytest.mark.aspose
def test_a_skewed_page_is_straightened_and_an_upright_one_left_alone(
    options: dict[str, Any],
) -> None:
    page = options["skewed"].pages[0]
    assert page.text.startswith(PHOTOTEST_START), page.text
    assert page.rotation is not None and 2.5 < abs(page.rotation) < 3.5
    assert options["multipage"].pages[0].rotation == 0.0


@pytest.mark.aspose
def test_without_rotation_a_sideways_page_comes_back_empty(options: dict[str, Any]) -> None:
    page = options["left-not-rotated"].pages[0]
    assert page.empty and page.rotation is None


@pytest.mark.aspose
def test_spellcheck_corrects_a_misspelt_image_and_keeps_the_raw_text(
    options: dict[str, Any],
) -> None:
    page = options["misspelt"].pages[0]
    assert page.text.startswith("Quick brwn foxes"), page.text
    assert page.corrected_text is not None
    assert page.corrected_text.startswith("Quick brown foxes")
    assert page.corrected_text != page.text
    kept = options["misspelt-with-dictionary"].pages[0]
    assert kept.corrected_text is not None and kept.corrected_text.startswith("Quick brwn")
