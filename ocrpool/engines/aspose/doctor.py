"""``ocrpool doctor``: can this machine run the aspose engine, and if not, why not.

The checks that load Aspose run in a throwaway child (``child.run_in_child``), so
a .NET abort becomes a failed check with the signal and the child's stderr tail.
The verdict rests on one fact: the engine read the warm-up image's first word. One
check is only informative: whether what Aspose's optional AI post-processors need
(``models.ai_runtime``) is on this machine.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from collections.abc import Callable
from pathlib import Path

from ocrpool.engines.aspose import child, models, provision, runtime
from ocrpool.engines.aspose.engine import LICENSE_VARIABLE, AsposeEngine
from ocrpool.engines.aspose.runtime import RuntimeSetupError
from ocrpool.engines.checks import RECOGNITION, Check, CheckStatus, DoctorReport
from ocrpool.engines.inputs import WARMUP_FIRST_LINE, WARMUP_IMAGE
from ocrpool.errors import JobTimeout, LicenseRejected, OcrPoolError, WorkerCrashed

DEFAULT_TIMEOUT_S = 120.0
ASPOSE_DISTRIBUTION = "aspose-ocr-python-net"
_LIBSSL = "libssl 1.1"
_ICU = "ICU"
_ENGINE = "engine"
_LICENSE = "license"
AI_POSTPROCESSING = "AI post-processing"
_RUNTIME_REMEDY = (
    "run `ocrpool doctor --fix`; the .NET runtime inside Aspose aborts when OpenSSL 1.1 "
    "or ICU is missing"
)


Probe = Callable[[str | None], tuple[Check, ...]]


def diagnose(
    *,
    fix: bool = False,
    license: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    probe: Probe | None = None,
) -> DoctorReport:
    """Check (and with ``fix``, provide) everything the aspose engine needs.

    ``probe`` is the module-level function run in the child to load the engine;
    ``probe_engine`` unless a caller supplies another.
    """
    libssl = _libssl_check(fix)
    checks = [libssl, _icu_check()]
    engine_checks = (_ENGINE, RECOGNITION, _LICENSE)
    if libssl.status is CheckStatus.FAIL:
        checks += [Check(n, CheckStatus.SKIPPED, "needs OpenSSL 1.1") for n in engine_checks]
        return DoctorReport(tuple(checks))
    try:
        checks += child.run_in_child(probe or probe_engine, license, timeout=timeout)
    except Exception as exc:
        what = "crashed" if isinstance(exc, WorkerCrashed) else "failed"
        tail = exc.stderr_tail if isinstance(exc, (WorkerCrashed, JobTimeout)) else ""
        checks.append(
            Check(
                _ENGINE,
                CheckStatus.FAIL,
                f"the engine process {what}: {exc}",
                _RUNTIME_REMEDY,
                tail,
            )
        )
    return DoctorReport(tuple(checks))


def _libssl_check(fix: bool) -> Check:
    try:
        location = runtime.find_libssl()
        if location is None and fix:
            started = time.monotonic()
            directory = provision.provision_libssl()
            return Check(
                _LIBSSL,
                CheckStatus.OK,
                f"provisioned into {directory} in {time.monotonic() - started:.1f} s",
            )
    except runtime.RuntimeSetupError as exc:
        return Check(_LIBSSL, CheckStatus.FAIL, exc.message, getattr(exc, "remedy", ""))
    if location is None:
        error = runtime.missing_libssl_error()
        return Check(_LIBSSL, CheckStatus.FAIL, error.message, getattr(error, "remedy", ""))
    return Check(_LIBSSL, CheckStatus.OK, location.describe())


def _icu_check() -> Check:
    choice = runtime.choose_globalization(os.environ, runtime.icu_major())
    if choice.variable == runtime.INVARIANT_VARIABLE and choice.value == "1":
        return Check(
            _ICU,
            CheckStatus.WARN,
            choice.describe(),
            "install your distribution's libicu package for culture-aware text handling",
        )
    return Check(_ICU, CheckStatus.OK, choice.describe())


def probe_engine(license: str | None) -> tuple[Check, ...]:
    """Runs in the child: start the engine cold, then read the warm-up image."""
    engine = AsposeEngine(license=license, warmup=False)
    started = time.monotonic()
    try:
        version = importlib.metadata.version(ASPOSE_DISTRIBUTION)
        engine.start()
    except Exception as exc:
        skipped = Check(RECOGNITION, CheckStatus.SKIPPED, "the engine did not start")
        if isinstance(exc, LicenseRejected):
            remedy = "pass a valid Aspose license file, or none for evaluation mode"
            return Check(_LICENSE, CheckStatus.FAIL, str(exc), remedy), skipped
        remedy = exc.remedy if isinstance(exc, RuntimeSetupError) else ""
        remedy = remedy or f"see the message; {_RUNTIME_REMEDY}"
        return Check(_ENGINE, CheckStatus.FAIL, f"{type(exc).__name__}: {exc}", remedy), skipped
    checks = [
        Check(
            _ENGINE,
            CheckStatus.OK,
            f"{ASPOSE_DISTRIBUTION} {version} started in {time.monotonic() - started:.1f} s",
        )
    ]
    started = time.monotonic()
    try:
        recognition = engine.recognize(str(WARMUP_IMAGE))
    except OcrPoolError as exc:
        checks.append(Check(RECOGNITION, CheckStatus.FAIL, str(exc), _RUNTIME_REMEDY))
        return tuple(checks)
    finally:
        engine.close()
    elapsed = time.monotonic() - started
    words = " ".join(recognition.text.split())
    expected = WARMUP_FIRST_LINE.split()[0]
    if expected.lower() in words.lower().split():
        checks.append(
            Check(RECOGNITION, CheckStatus.OK, f"read {words!r} in {elapsed:.1f} s (first run)")
        )
    else:
        checks.append(
            Check(
                RECOGNITION,
                CheckStatus.FAIL,
                f"expected {expected!r} in the warm-up image, read {words!r}",
                "report this with the output of `ocrpool doctor --json`",
            )
        )
    checks.append(_license_check(license, recognition.evaluation_mode))
    model_dir = Path(models.aspose_view().model_dir)
    checks.append(ai_check(model_dir, models.ai_runtime(model_dir)))
    return tuple(checks)


def ai_check(model_dir: Path, found: models.AiRuntime) -> Check:
    """Whether AsposeAI's post-processors could run here, and what is missing if not."""
    if found.complete:
        names = ", ".join(model.name for model in found.models)
        return Check(
            AI_POSTPROCESSING,
            CheckStatus.OK,
            f"{models.LIBDL} loads; llama.cpp runtime in {found.runtimes[0]}; models: {names}",
        )
    missing = []
    if not found.libdl_loads:
        missing.append(f"no {models.LIBDL} the loader finds")
    if not found.runtimes:
        missing.append(f"no llama.cpp runtime (libllama.so) under {model_dir.parent}/runtimes")
    if not found.models:
        missing.append(f"no .gguf model in {model_dir}")
    return Check(
        AI_POSTPROCESSING,
        CheckStatus.INFO,
        "not available (optional, unused by ocrpool): " + "; ".join(missing),
        "see 'AI post-processing' in docs/guide/models.md for what to provide",
    )


def _license_check(license: str | None, evaluation_mode: bool) -> Check:
    path = license or os.environ.get(LICENSE_VARIABLE)
    if evaluation_mode:
        detail = "evaluation mode: Aspose returns only part of each image's text"
        if path:
            detail += f" although {path} was accepted"
        return Check(
            _LICENSE,
            CheckStatus.WARN,
            detail,
            f"pass --license FILE, the engine option license=, or set {LICENSE_VARIABLE}",
        )
    return Check(_LICENSE, CheckStatus.OK, f"licensed ({path})" if path else "licensed")
