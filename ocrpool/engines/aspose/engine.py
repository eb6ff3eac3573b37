"""The Aspose.OCR engine (``engine="aspose"``).

Importing this module does not import ``aspose.ocr``: ``start()`` does, in the worker,
after ``runtime.prepare_process()`` has made the .NET runtime loadable. Inputs
are checked (exists, readable, not empty, a known format) before Aspose sees them, so
the common mistakes get a short message naming the file; what Aspose itself rejects
is translated from its ``RuntimeError("Proxy error(...): ...")`` by ``translate_error``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from ocrpool.engines.aspose import exports, orientation, spelling
from ocrpool.engines.aspose.errors import detail, translate_error
from ocrpool.engines.aspose.runtime import RuntimeTuning, prepare_process, tune_runtime
from ocrpool.engines.base import JobOptions, PageSpan, Source, check_switches
from ocrpool.engines.inputs import (
    WARMUP_IMAGE,
    bytes_format,
    bytes_label,
    check_file,
)
from ocrpool.errors import EngineError, EngineOptionError, InvalidInput, LicenseRejected
from ocrpool.exports import ExportFormat, parse_formats
from ocrpool.formats import Format
from ocrpool.results import Line, Page, Recognition

LICENSE_VARIABLE = "OCRPOOL_LICENSE"
"""Path of the Aspose license file used when the ``license`` option is not given."""


UNTUNED_OPTIONS: Mapping[str, Any] = {
    "tiered_compilation": True,
    "concurrent_gc": True,
    "retain_image_for_export": True,
}
"""The engine options that turn off every tuning ocrpool adopted: .NET's and Aspose's own
behaviour, which any other way of running Aspose gets (``python -m benchmarks tune-engine``)."""

_MULTI_PAGE_INPUTS = {Format.TIFF: "TIFF", Format.PDF: "PDF"}
_BANNER = re.compile(r"^[ \t]*\*+[ \t]*Trial Licenses[ \t]*\*+[ \t]*$\n?", re.MULTILINE)
_EVALUATION_WARNING = "Trial Licenses"


class AsposeEngine:
    """Aspose.OCR in this process: one ``AsposeOcr`` and one ``AsposeAI``.

    Options (all keyword, all optional):

    - ``language``: an ``aspose.ocr.Language`` name, any case (``"eng"``, ``"LATIN"``);
      default Aspose's own (LATIN).
    - ``detect_areas``: an ``aspose.ocr.DetectAreasMode`` name; default Aspose's own
      (UNIVERSAL). MULTICOLUMN, DOCUMENT_LAYOUT, TABLE, CURVED_TEXT and FORMULA need
      resources Aspose downloads on first use (see ``allow_downloads``).
    - ``upscale_small_font``: Aspose's ``upscale_small_font`` (enlarge small print before
      recognition); default Aspose's own (False).
    - ``automatic_color_inversion``: Aspose's ``automatic_color_inversion`` (read light
      text on dark ground); default Aspose's own (True).
    - ``threads``: threads per recognition (Aspose's ``threads_count`` and ONNX Runtime's
      intra-op threads; inter-op 1); default 1, the right value for a pool of processes.
      ``None`` leaves Aspose's own threading alone.
    - ``tiered_compilation``, ``concurrent_gc``: .NET runtime features (``RuntimeTuning``);
      default False, which measured cheaper per image for a worker's engine; True leaves
      .NET's own default. They are set in this process's environment in ``start()``,
      before the runtime loads, and take effect only if nothing in this process has
      started it yet (true in a pool worker).
    - ``retain_image_for_export``: Aspose's ``retain_image_for_export``, which keeps a copy
      of each page's image in its result for a later export; default False, which
      measured cheaper per image: ocrpool renders exports in the same call, so the image
      is kept anyway whenever ``exports`` asks for any. True is Aspose's own behaviour.
    - ``language_detection_level``: an ``aspose.ocr.LanguageDetectionLevel`` name
      (``by_page``, ``by_paragraph``, ``by_word``): how finely Aspose decides which
      language of ``language``'s group each part of a page is in; default Aspose's own
      (BY_PARAGRAPH): the others read the same text but saved nothing in every round.
    - ``license``: path of an Aspose license file; default ``$OCRPOOL_LICENSE``; neither
      means evaluation mode. A missing or rejected file fails ``start()``.
    - ``allow_downloads``: let Aspose download missing resources; default False, so an
      offline machine fails at once (``ResourceUnavailable``) instead of waiting ~15 s
      on DNS per attempt.
    - ``resource_dir``: directory of Aspose resources (``*.ocr`` files); default
      Aspose's own (``aspose_data`` in the working directory).
    - ``warmup``: recognise the built-in warm-up image in ``start()`` (with every option
      below, so a ready worker has paid their first-use costs too); default True.
    - ``rotate_pages``: measure each page's orientation and skew and recognise it
      upright; each ``Page.rotation`` says by how many degrees; default False: it adds
      about a quarter to recognition's CPU time (``python -m benchmarks options``).
    - ``spellcheck``: an ``aspose.ocr.spellchecker.SpellCheckLanguage`` name (``"eng"``,
      ``"deu"``, ...): each ``Page.corrected_text`` is its text spell-checked offline;
      default None (off).
    - ``spellcheck_dictionary``: a user word list for the spell-check (one lowercase
      word and its frequency per line).
    - ``exports``: export format names (``ocrpool.ExportFormat``: ``"pdf"``,
      ``"hocr"``, ...): ``Recognition.exports`` holds one document per format.
    """

    reads_page_spans: ClassVar[bool] = True
    """``recognize`` takes a ``PageSpan``: ``OcrInput.add(path, start_page, pages_number)``."""
    takes_job_options: ClassVar[bool] = True
    """A job's own ``language``, ``rotate_pages``, ``spellcheck`` and ``exports`` apply to
    it alone (a language through settings of its own; the rest are per call anyway)."""

    def __init__(
        self,
        *,
        language: str | None = None,
        detect_areas: str | None = None,
        upscale_small_font: bool = False,
        automatic_color_inversion: bool = True,
        threads: int | None = 1,
        tiered_compilation: bool = False,
        concurrent_gc: bool = False,
        retain_image_for_export: bool = False,
        language_detection_level: str | None = None,
        license: str | os.PathLike[str] | None = None,
        allow_downloads: bool = False,
        resource_dir: str | os.PathLike[str] | None = None,
        warmup: bool = True,
        rotate_pages: bool = False,
        spellcheck: str | None = None,
        spellcheck_dictionary: str | os.PathLike[str] | None = None,
        exports: Sequence[str] = (),
    ) -> None:
        check_switches(
            upscale_small_font=upscale_small_font,
            automatic_color_inversion=automatic_color_inversion,
            tiered_compilation=tiered_compilation,
            concurrent_gc=concurrent_gc,
            retain_image_for_export=retain_image_for_export,
            allow_downloads=allow_downloads,
            warmup=warmup,
            rotate_pages=rotate_pages,
        )
        if threads is not None and (type(threads) is not int or threads < 1):
            raise EngineOptionError(
                f"threads must be a positive integer or None, not {threads!r}", option="threads"
            )
        for name, path in (
            ("license", license),
            ("resource_dir", resource_dir),
            ("spellcheck_dictionary", spellcheck_dictionary),
        ):  # else ``start`` fails on it, a failed start retried as if the machine were at fault
            if path is not None and not isinstance(path, (str, os.PathLike)):
                raise EngineOptionError(
                    f"{name} must be a path or None, not {type(path).__name__} {path!r}",
                    option=name,
                )
        if spellcheck_dictionary is not None and spellcheck is None:
            raise EngineOptionError(
                "spellcheck_dictionary needs spellcheck (a language)",
                option="spellcheck_dictionary",
            )
        try:
            self._exports = parse_formats(exports)
        except (TypeError, ValueError) as exc:
            raise EngineOptionError(str(exc), option="exports") from None
        self._language = language
        self._detect_areas = detect_areas
        self._upscale_small_font = upscale_small_font
        self._automatic_color_inversion = automatic_color_inversion
        self._threads = threads
        self._tuning = RuntimeTuning(tiered_compilation, concurrent_gc)
        self._retain_images = retain_image_for_export or bool(self._exports)
        self._language_detection_level = language_detection_level
        self._license = license
        self._allow_downloads = allow_downloads
        self._resource_dir = resource_dir
        self._warmup = warmup
        self._rotate_pages = rotate_pages
        self._spellcheck = spellcheck
        self._dictionary = spellcheck_dictionary
        self._spellcheck_language: Any = None
        self._dictionary_file = ""
        self._ocr: Any = None
        self._api: Any = None
        self._ai: Any = None
        self._settings: Any = None

    def start(self) -> None:
        license_path = self._license_path()
        resource_dir = self._resource_path()
        dictionary = self._dictionary_path()
        tune_runtime(self._tuning)
        prepare_process()
        import aspose.ocr as ocr
        from aspose.ocr.ai import AsposeAI

        # Aspose otherwise appends every error to Aspose.OCR.log.txt in the working
        # directory; ocrpool reports errors itself.
        ocr.Logging.set_file_system(False)
        ocr.Resources.allow_automatic_downloads(self._allow_downloads)
        if resource_dir is not None:
            ocr.Resources.set_local_path(resource_dir)
        if license_path is not None:
            try:
                ocr.License().set_license(license_path)
            except RuntimeError as exc:
                raise LicenseRejected(
                    f"Aspose rejected the license file {license_path}: {detail(str(exc))}",
                    license=license_path,
                ) from None
        if self._threads is not None:
            # Static, and read when the engine is created: set them first.
            ocr.OnnxRuntimeSessionOptions.set_intra_op_num_threads(self._threads)
            ocr.OnnxRuntimeSessionOptions.set_inter_op_num_threads(1)
        self._ocr = ocr
        self._settings = self._new_settings(self._language, self._retain_images)
        if self._spellcheck is not None:
            self._spellcheck_language = self._spelling(self._spellcheck)
            self._dictionary_file = dictionary or ""
        self._api, self._ai = ocr.AsposeOcr(), AsposeAI()
        if self._warmup:
            self.recognize(str(WARMUP_IMAGE))

    def recognize(self, source: Source, options: JobOptions | None = None) -> Recognition:
        if self._api is None:
            raise EngineError("the engine is not started")
        job = self._job(options or JobOptions())
        span = source if isinstance(source, PageSpan) else None
        whole = source.path if isinstance(source, PageSpan) else source
        with _input_file(whole) as (path, label, fmt):
            try:
                recognition = self._recognize_file(path, label, fmt, job, span)
            except RuntimeError as exc:
                raise translate_error(str(exc), path, label) from None
        if not recognition.pages:  # a PDF of no pages: nothing was read
            raise InvalidInput(f"{label}: no pages", input=label)
        return recognition

    def _job(self, options: JobOptions) -> _JobSettings:
        """The engine's settings with a job's own over them (settings of its own for
        another language, or for exports when the engine keeps no page images)."""
        exports = self._exports if options.exports is None else options.exports
        retain_images = self._retain_images or bool(exports)
        settings = self._settings
        if options.language is not None or retain_images != self._retain_images:
            settings = self._new_settings(options.language or self._language, retain_images)
        spelling_language = self._spellcheck_language
        if options.spellcheck is not None:
            spelling_language = self._spelling(options.spellcheck) if options.spellcheck else None
        return _JobSettings(
            settings,
            self._rotate_pages if options.rotate_pages is None else options.rotate_pages,
            spelling_language,
            exports,
        )

    def _new_settings(self, language: str | None, retain_images: bool) -> Any:
        """Aspose's ``RecognitionSettings`` from the options, in ``language``, keeping page
        images for exports when ``retain_images``."""
        ocr = self._ocr
        settings = ocr.RecognitionSettings()
        settings.upscale_small_font = self._upscale_small_font
        settings.automatic_color_inversion = self._automatic_color_inversion
        settings.retain_image_for_export = retain_images
        if self._language_detection_level is not None:
            settings.language_detection_level = _member(
                ocr.LanguageDetectionLevel,
                self._language_detection_level,
                "language_detection_level",
            )
        if self._threads is not None:
            settings.threads_count = self._threads
        if language is not None:
            settings.language = _member(ocr.Language, language, "language")
        if self._detect_areas is not None:
            settings.detect_areas_mode = _member(
                ocr.DetectAreasMode, self._detect_areas, "detect_areas"
            )
        return settings

    @staticmethod
    def _spelling(name: str) -> Any:
        from aspose.ocr.spellchecker import SpellCheckLanguage

        return _member(SpellCheckLanguage, name, "spellcheck")

    def _recognize_file(
        self, path: str, label: str, fmt: Format, job: _JobSettings, span: PageSpan | None = None
    ) -> Recognition:
        ocr = self._ocr
        input_type = getattr(ocr.InputType, _MULTI_PAGE_INPUTS.get(fmt, "SINGLE_IMAGE"))
        angles: tuple[float, ...] | None = None
        if job.rotate_pages:
            output, angles = orientation.recognize_upright(
                ocr, self._api, job.settings, input_type, path, span
            )
        else:
            ocr_input = ocr.OcrInput(input_type)
            orientation.add_pages(ocr_input, path, span)
            output = self._api.recognize(ocr_input, job.settings)
        recognition = to_recognition(output, angles)
        pages = recognition.pages
        if job.spelling_language is not None:
            pages = spelling.correct_pages(
                self._api, pages, job.spelling_language, self._dictionary_file
            )
        rendered = exports.render(ocr, self._api, output, pages, job.exports, label)
        return dataclasses.replace(recognition, pages=pages, exports=rendered)

    def close(self) -> None:
        for native in (self._api, self._ai):
            if native is not None:
                native.free_resources()
        self._api = self._ai = None

    def _license_path(self) -> str | None:
        configured = self._license or os.environ.get(LICENSE_VARIABLE)
        if not configured:
            return None
        path = os.path.abspath(os.fspath(configured))
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise LicenseRejected(
                f"license file {path} does not exist or is not readable", license=path
            )
        return path

    def _dictionary_path(self) -> str | None:
        """Checked here: Aspose silently ignores a dictionary it cannot read."""
        if self._dictionary is None:
            return None
        path = os.path.abspath(os.fspath(self._dictionary))
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise EngineOptionError(
                f"spellcheck_dictionary {path} does not exist or is not readable",
                option="spellcheck_dictionary",
            )
        return path

    def _resource_path(self) -> str | None:
        if self._resource_dir is None:
            return None
        path = os.path.abspath(os.fspath(self._resource_dir))
        if not os.path.isdir(path):
            raise EngineOptionError(
                f"resource_dir {path} is not a directory", option="resource_dir"
            )
        return path


@dataclasses.dataclass(frozen=True)
class _JobSettings:
    """What one recognition runs with: the engine's options, or a job's own over them."""

    settings: Any
    rotate_pages: bool
    spelling_language: Any
    exports: tuple[ExportFormat, ...]


def _member(enum_type: Any, name: str, option: str) -> Any:
    try:
        return enum_type[str(name).upper()]
    except KeyError:
        choices = ", ".join(sorted(enum_type.__members__))
        raise EngineOptionError(
            f"unknown {option} {name!r}; choose one of: {choices}", option=option
        ) from None


@contextlib.contextmanager
def _input_file(source: str | bytes) -> Iterator[tuple[str, str, Format]]:
    """The input as ``(path for Aspose, label for messages, format)``.

    Bytes go through a temporary file: Aspose's base64 input reads only the first
    page of a multi-page TIFF and none of a PDF; a name that is not UTF-8, through a
    symlink of a UTF-8 name.
    """
    if isinstance(source, bytes):
        label, fmt = bytes_label(source), bytes_format(source)
        with tempfile.NamedTemporaryFile(prefix="ocrpool-", suffix=f".{fmt.value}") as temp:
            temp.write(source)
            temp.flush()
            yield temp.name, label, fmt
    else:
        path = os.fspath(source)
        fmt = check_file(path)
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            # Aspose takes a path as text: a name's bytes that are not UTF-8 (lone
            # surrogates) reach .NET as U+FFFD, a file that does not exist. It gets a
            # symlink of a UTF-8 name to the input instead.
            with tempfile.TemporaryDirectory(prefix="ocrpool-") as folder:
                link = os.path.join(folder, f"input.{fmt.value}")
                os.symlink(os.path.abspath(path), link)
                yield link, path, fmt
        else:
            yield path, path, fmt


def to_recognition(output: Any, angles: Sequence[float] | None = None) -> Recognition:
    """Plain results from Aspose's ``OcrOutput``, without the evaluation banner;
    ``angles`` are the rotations the pages were recognised with."""
    pages = []
    evaluation_mode = False
    for number, result in enumerate(output):
        text, banners = _BANNER.subn("", result.recognition_text)
        warned = any(_EVALUATION_WARNING in str(warning) for warning in result.warnings)
        evaluation_mode = evaluation_mode or banners > 0 or warned
        lines = tuple(
            Line(
                line.text_in_line,
                (line.line.x, line.line.y, line.line.width, line.line.height),
                float(line.confidence),
            )
            for line in result.recognition_lines_result
        )
        rotation = angles[number] if angles is not None and number < len(angles) else None
        pages.append(Page(text.rstrip(), lines, rotation))
    return Recognition(tuple(pages), evaluation_mode)
