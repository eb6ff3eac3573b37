"""The Tesseract engine (``engine="tesseract"``): libtesseract in the worker, through
tesserocr.

Importing this module imports neither tesserocr nor Pillow nor PDFium: ``start()``
and ``recognize()`` do, in the worker. One ``PyTessBaseAPI`` lives from ``start()`` to
``close()`` (``End()``), so a worker's recycling frees everything Tesseract holds.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ocrpool.engines.base import JobOptions, PageSpan, Source, check_switches
from ocrpool.engines.inputs import WARMUP_IMAGE, bytes_format, bytes_label, check_file
from ocrpool.engines.tesseract import exports as renderers, pages
from ocrpool.engines.tesseract.data import data_dir, require_languages
from ocrpool.errors import EngineError, EngineOptionError
from ocrpool.exports import ExportFormat
from ocrpool.results import Line, Page, Recognition

THREAD_LIMIT_VARIABLE = "OMP_THREAD_LIMIT"
"""OpenMP's thread cap, read once when libgomp loads: set before tesserocr is imported."""
DETAILS = ("lines", "words")
_UPRIGHT = 0


class TesseractEngine:
    """One ``PyTessBaseAPI`` in this process.

    Options (all keyword, all optional):

    - ``language``: Tesseract language codes joined by ``+`` (``"eng"``,
      ``"eng+deu"``); default ``"eng"``. Each needs ``<code>.traineddata`` in the data
      directory; a missing one fails ``start()`` with ``ResourceUnavailable`` naming the
      package to install.
    - ``psm``: page segmentation mode, a ``tesserocr.PSM`` name (``"auto"``,
      ``"single_block"``, ``"sparse_text"``, ...) or number; default ``"auto"`` (3).
    - ``dpi``: the resolution of images that declare none, and the one PDF pages are
      rendered at; default 300.
    - ``detail``: what ``Page.lines`` holds: ``"lines"`` (each text line, its box and
      confidence, as the aspose engine gives) or ``"words"`` (each word); default
      ``"lines"``. Confidences are Tesseract's, scaled to 0..1.
    - ``rotate_pages``: detect each page's orientation with Tesseract's OSD
      (``osd.traineddata``) and recognise it upright; ``Page.rotation`` is the
      clockwise turn found (0, 90, 180 or 270); default False.
    - ``rotate_min_confidence``: the OSD confidence below which a page is left as it
      is; default 2.0 (a page without text scores 0).
    - ``exports``: ``"pdf"``, ``"pdf-no-img"``, ``"hocr"``, ``"txt"`` (Tesseract's
      renderers); ``Recognition.exports`` holds one document per format.
    - ``tessdata_dir``: the language data directory; default ``$OCRPOOL_TESSDATA``, else
      ``<sys.prefix>/share/tessdata``, where ``make setup`` installs it.
    - ``warmup``: recognise the built-in warm-up image in ``start()``; default True.
    """

    reads_page_spans: ClassVar[bool] = True
    takes_job_options: ClassVar[bool] = True
    """A job's own ``exports`` and ``rotate_pages`` apply to it alone; its ``language`` must
    be the one the engine started with (loading another costs a start), and it has no
    ``spellcheck``."""

    def __init__(
        self,
        *,
        language: str = "eng",
        psm: str | int = "auto",
        dpi: int = 300,
        detail: str = "lines",
        rotate_pages: bool = False,
        rotate_min_confidence: float = 2.0,
        exports: Sequence[str] = (),
        tessdata_dir: str | os.PathLike[str] | None = None,
        warmup: bool = True,
    ) -> None:
        check_switches(rotate_pages=rotate_pages, warmup=warmup)
        if not isinstance(dpi, int) or isinstance(dpi, bool) or not 1 < dpi <= 2400:
            raise EngineOptionError(
                f"dpi must be an integer from 2 to 2400, not {dpi!r}", option="dpi"
            )
        if detail not in DETAILS:
            choices = ", ".join(DETAILS)
            raise EngineOptionError(
                f"detail must be one of {choices}, not {detail!r}", option="detail"
            )
        self._exports = renderers.supported_formats(exports)
        self._language = str(language)
        self._psm = psm
        self._dpi = dpi
        self._detail = detail
        self._rotate_pages = rotate_pages
        self._rotate_min_confidence = float(rotate_min_confidence)
        self._tessdata_dir = data_dir(tessdata_dir, os.environ)
        self._warmup = warmup
        self._tesserocr: Any = None
        self._api: Any = None

    def start(self) -> None:
        # One engine per core: a libtesseract built with OpenMP would otherwise run
        # several threads per page in every worker and oversubscribe the cores.
        os.environ.setdefault(THREAD_LIMIT_VARIABLE, "1")
        require_languages(self._tessdata_dir, self._language, osd=self._rotate_pages)
        import tesserocr

        psm = _psm(tesserocr.PSM, self._psm)
        try:
            api = tesserocr.PyTessBaseAPI(
                path=f"{self._tessdata_dir}/", lang=self._language, psm=psm
            )
        except RuntimeError as exc:
            raise EngineError(
                f"Tesseract could not load {self._language!r} from {self._tessdata_dir}: {exc}"
            ) from None
        self._tesserocr, self._api = tesserocr, api
        if self._warmup:
            self.recognize(str(WARMUP_IMAGE))

    def recognize(self, source: Source, options: JobOptions | None = None) -> Recognition:
        if self._api is None:
            raise EngineError("the engine is not started")
        exports, rotate = self._job(options or JobOptions())
        span = None
        if isinstance(source, PageSpan):  # a page job: only its pages
            span = range(source.start, source.start + source.count)
            source = source.path
        if isinstance(source, bytes):
            label, fmt = bytes_label(source), bytes_format(source)
        else:
            label = os.fspath(source)
            fmt = check_file(label)
        with _export_folder(bool(exports)) as folder:
            read: list[Page] = []
            written: list[Path] = []
            for number, page in enumerate(pages.read_pages(source, fmt, label, self._dpi, span)):
                image, rotation = self._upright(page) if rotate else (page.image, None)
                read.append(self._read(image, page.dpi, rotation, label))
                if folder is not None:
                    written.append(folder / f"page-{number:05d}.png")
                    image.save(written[-1], dpi=(page.dpi, page.dpi))
            if not read:
                raise EngineError(f"{label}: no pages", input=label)
            rendered = (
                renderers.render(self._api, written, exports, label, folder)
                if folder is not None
                else ()
            )
        return Recognition(tuple(read), exports=rendered)

    def close(self) -> None:
        if self._api is not None:
            self._api.End()
        self._api = None

    def _job(self, options: JobOptions) -> tuple[tuple[ExportFormat, ...], bool]:
        """The exports and orientation check of one job: its own, else the engine's."""
        if options.language is not None and options.language != self._language:
            raise EngineError(
                f"the tesseract engine reads {self._language!r}, the language it started "
                f"with, not {options.language!r}: start a pool with language={options.language!r}"
            )
        if options.spellcheck:
            raise EngineError("the tesseract engine has no spell-check")
        exports = self._exports
        if options.exports is not None:
            exports = renderers.supported_formats([fmt.value for fmt in options.exports])
        rotate = self._rotate_pages if options.rotate_pages is None else options.rotate_pages
        if rotate and not self._rotate_pages:  # OSD's data was checked at start only if on
            require_languages(self._tessdata_dir, self._language, osd=True)
        return exports, rotate

    def _upright(self, page: pages.PageImage) -> tuple[Any, float | None]:
        """The page turned upright by OSD, and the clockwise turn found."""
        self._set_image(page.image, page.dpi)
        try:
            found = self._api.DetectOrientationScript()
        except RuntimeError:
            found = None  # no text to judge by
        if not found or found["orient_conf"] < self._rotate_min_confidence:
            return page.image, float(_UPRIGHT)
        degrees = int(found["orient_deg"])
        if degrees == _UPRIGHT:
            return page.image, float(_UPRIGHT)
        # Found turned clockwise by ``degrees``: Pillow turns counter-clockwise.
        return page.image.rotate(degrees, expand=True), float(degrees)

    def _read(self, image: Any, dpi: int, rotation: float | None, label: str) -> Page:
        self._set_image(image, dpi)
        if not self._api.Recognize():
            raise EngineError(f"{label}: Tesseract's recognition failed", input=label)
        text = self._api.GetUTF8Text().rstrip()
        return Page(text, self._lines(), rotation)

    def _set_image(self, image: Any, dpi: int) -> None:
        self._api.SetImage(image)
        self._api.SetSourceResolution(dpi)

    def _lines(self) -> tuple[Line, ...]:
        ril = self._tesserocr.RIL
        level = ril.TEXTLINE if self._detail == "lines" else ril.WORD
        iterator = self._api.GetIterator()
        if iterator is None:
            return ()
        found = []
        for item in self._tesserocr.iterate_level(iterator, level):
            if item.Empty(level):
                continue
            text = item.GetUTF8Text(level).strip()
            box = item.BoundingBox(level)
            if not text or box is None:
                continue
            left, top, right, bottom = box
            confidence = round(item.Confidence(level) / 100, 4)
            found.append(Line(text, (left, top, right - left, bottom - top), confidence))
        return tuple(found)


def _psm(modes: Any, wanted: str | int) -> int:
    names = {
        name.lower(): int(value)
        for name, value in vars(modes).items()
        if name.isupper() and name != "COUNT"
    }
    if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted in names.values():
        return wanted
    if isinstance(wanted, str) and wanted.lower() in names:
        return names[wanted.lower()]
    choices = ", ".join(f"{name} ({value})" for name, value in sorted(names.items(), key=_by_value))
    raise EngineOptionError(f"unknown psm {wanted!r}; choose one of: {choices}", option="psm")


def _by_value(item: tuple[str, int]) -> int:
    return item[1]


@contextlib.contextmanager
def _export_folder(wanted: bool) -> Iterator[Path | None]:
    """A private folder for the pages the renderers read, when exports are asked for."""
    if not wanted:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="ocrpool-tesseract-") as folder:
        yield Path(folder)
