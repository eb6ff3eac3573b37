"""The aspose engine: input checks and error translation here, recognition in a child.

The real engine runs once, in one spawned child (``engine_session``) that plays every
scenario and returns plain results; pytest itself never imports ``aspose.ocr``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from imaging import write_text_image

from ocrpool.engines.aspose.child import run_in_child
from ocrpool.engines.aspose.engine import (
    AsposeEngine,
    check_file,
    to_recognition,
    translate_error,
)
from ocrpool.errors import EngineError, InvalidInput, ResourceUnavailable
from ocrpool.formats import Format

PHOTOTEST = Path(__file__).parent / "data" / "phototest.tif"
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
    for kind, path in bad.items():
        attempt(kind, lambda path=path: engine.recognize(str(path)))
    attempt("corrupt-bytes", lambda: engine.recognize(bad["corrupt"].read_bytes()))
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
    assert isinstance(session["bad-language"], EngineError)
    assert "ENG" in session["bad-language"].message
