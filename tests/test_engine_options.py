"""Engine options are checked where they can be: their names before any worker starts,
their values by the engine's constructor (no native library needed) or its start."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocrpool import EngineOptionError
from ocrpool.engines import check_option_names
from ocrpool.engines.aspose.engine import AsposeEngine
from ocrpool.engines.tesseract.engine import TesseractEngine
from ocrpool.pool.protocol import WorkerSpec
from ocrpool.pool.worker import _start_engine


def test_names_an_engine_does_not_take_are_listed_with_the_ones_it_does() -> None:
    with pytest.raises(ValueError) as caught:
        check_option_names("tesseract", {"psm": 6, "langauge": "deu", "colour": 1})
    message = str(caught.value)
    assert message.startswith("the 'tesseract' engine has no option 'colour', 'langauge'; ")
    assert "its options: detail, dpi, exports, language, psm," in message
    check_option_names("tesseract", {"psm": 6, "language": "deu"})


def test_an_engine_that_takes_any_keyword_is_not_second_guessed() -> None:
    check_option_names(f"{__name__}:AnyOptions", {"whatever": 1})


class AnyOptions:
    def __init__(self, **options: object) -> None:
        self.options = options


@pytest.mark.parametrize(
    ("engine", "options", "option", "says"),
    [
        (AsposeEngine, {"upscale_small_font": "yes"}, "upscale_small_font", "not 'yes'"),
        (AsposeEngine, {"warmup": 1}, "warmup", "true or false, not 1"),
        (AsposeEngine, {"threads": True}, "threads", "not True"),
        (AsposeEngine, {"exports": ["tiff"]}, "exports", "unknown export format 'tiff'"),
        (AsposeEngine, {"exports": [None]}, "exports", "a name, not NoneType None"),
        (AsposeEngine, {"license": 5}, "license", "a path or None, not int 5"),
        (AsposeEngine, {"resource_dir": ["data"]}, "resource_dir", "not list ['data']"),
        (TesseractEngine, {"rotate_pages": "no"}, "rotate_pages", "not 'no'"),
        (TesseractEngine, {"dpi": 0}, "dpi", "not 0"),
        (TesseractEngine, {"exports": ["docx"]}, "exports", "cannot export docx"),
        (TesseractEngine, {"exports": 5}, "exports", "export formats are names, not int 5"),
    ],
)
def test_a_value_the_constructor_refuses_names_its_option(
    engine: type[object], options: dict[str, object], option: str, says: str
) -> None:
    """Before the engine loads: a command line's ``yes`` is text, never taken as on."""
    with pytest.raises(EngineOptionError) as caught:
        engine(**options)
    assert caught.value.option == option
    assert says in caught.value.message


class Picky:
    """An engine of one's own whose constructor checks a value the plain way."""

    def __init__(self, *, size: int = 1) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")

    def start(self) -> None:
        raise RuntimeError("the machine is missing something")


@pytest.mark.parametrize(
    ("options", "option", "error"),
    [
        ({"size": 0}, "", "ValueError: size must be at least 1, not 0"),
        ({"size": 2}, None, "RuntimeError: the machine is missing something"),
    ],
)
def test_a_constructor_s_value_error_is_a_refused_option_and_a_start_s_is_not(
    tmp_path: Path, options: dict[str, object], option: str | None, error: str
) -> None:
    """The constructor takes options and nothing else; ``start`` meets the machine, so
    what it raises (other than ``EngineOptionError``) is retried as any failed start."""
    spec = WorkerSpec(f"{__name__}:Picky", options, str(tmp_path / "stderr"))
    engine, failed = _start_engine(spec)
    assert engine is None and failed is not None
    assert (failed.option, failed.error) == (option, error)
