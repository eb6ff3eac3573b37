"""ocrpool doctor: verdicts, crash reports and exit codes; one real run in CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocrpool.cli import main
from ocrpool.cli.doctor import render_text
from ocrpool.engines.aspose import runtime
from ocrpool.engines.aspose.doctor import (
    AI_POSTPROCESSING,
    RECOGNITION,
    Check,
    CheckStatus,
    DoctorReport,
    ai_check,
    diagnose,
)
from ocrpool.engines.aspose.models import AiRuntime
from ocrpool.error_codes import ExitCode


@pytest.fixture
def fake_libssl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OCRPOOL_LIBSSL_DIR pointing at two placeholder files: the libssl check passes."""
    for name in (runtime.LIBCRYPTO, runtime.LIBSSL):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv(runtime.LIBSSL_DIR_VARIABLE, str(tmp_path))
    return tmp_path


def probe_aborts(license: str | None) -> tuple[Check, ...]:
    print("Process terminated. Couldn't find a valid ICU package", file=sys.stderr, flush=True)
    os.abort()


def probe_reads_nothing(license: str | None) -> tuple[Check, ...]:
    return (Check(RECOGNITION, CheckStatus.FAIL, "expected 'Hello', read ''"),)


def test_only_a_recognition_that_passed_makes_the_report_ok() -> None:
    passing = Check(RECOGNITION, CheckStatus.OK, "read 'Hello'")
    warning = Check("license", CheckStatus.WARN, "evaluation mode", "set OCRPOOL_LICENSE")
    assert DoctorReport((passing, warning)).ok
    assert not DoctorReport((warning,)).ok
    assert not DoctorReport((Check(RECOGNITION, CheckStatus.FAIL, "read ''"),)).ok


def test_missing_libssl_fails_with_a_remedy_and_skips_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(runtime.LIBSSL_DIR_VARIABLE, str(tmp_path))
    report = diagnose()
    statuses = {check.name: check.status for check in report.checks}
    assert statuses["libssl 1.1"] is CheckStatus.FAIL
    assert statuses[RECOGNITION] is CheckStatus.SKIPPED
    assert not report.ok
    assert main(["doctor"]) == ExitCode.ENGINE_UNAVAILABLE
    out = capsys.readouterr().out
    assert "FAIL  libssl 1.1" in out
    assert "ocrpool doctor --fix" in out
    assert out.rstrip().endswith("ocrpool doctor: the aspose engine cannot run here")


def test_a_crashing_engine_is_reported_with_signal_and_stderr(fake_libssl: Path) -> None:
    report = diagnose(probe=probe_aborts)
    engine = report.checks[-1]
    assert engine.status is CheckStatus.FAIL
    assert "SIGABRT" in engine.detail
    assert "Couldn't find a valid ICU package" in engine.stderr_tail
    text = render_text(report)
    assert "      | Process terminated. Couldn't find a valid ICU package" in text
    assert not report.ok


def test_an_engine_that_reads_nothing_fails(fake_libssl: Path) -> None:
    assert not diagnose(probe=probe_reads_nothing).ok


def test_the_ai_check_names_what_is_missing_and_never_decides_the_verdict() -> None:
    models = Path("/data/Aspose.AI.LLM/models")
    nothing = ai_check(models, AiRuntime(False, (), ()))
    assert nothing.status is CheckStatus.INFO
    assert nothing.detail == (
        "not available (optional, unused by ocrpool): no libdl.so the loader finds; "
        "no llama.cpp runtime (libllama.so) under /data/Aspose.AI.LLM/runtimes; "
        "no .gguf model in /data/Aspose.AI.LLM/models"
    )
    runtime_dir = Path("/data/Aspose.AI.LLM/runtimes/b6451/linux-x64-avx2/native")
    found = ai_check(models, AiRuntime(True, (runtime_dir,), (models / "qwen.gguf",)))
    assert found.status is CheckStatus.OK and "qwen.gguf" in found.detail
    passing = Check(RECOGNITION, CheckStatus.OK, "read 'Hello'")
    assert DoctorReport((passing, nothing)).ok
    assert "-> see 'AI post-processing' in docs/guide/models.md" in render_text(
        DoctorReport((passing, nothing))
    )


@pytest.mark.aspose
@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_a_timeout_that_is_not_some_seconds_is_a_usage_error(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not an engine that "hung" in 0 s, exit 4, with advice to reinstall it."""
    with pytest.raises(SystemExit) as stopped:
        main(["doctor", "--engine", "tesseract", f"--timeout={timeout}"])
    assert stopped.value.code == ExitCode.USAGE
    assert "argument --timeout: must be" in capsys.readouterr().err


def test_doctor_passes_on_this_machine() -> None:
    entry = "from ocrpool.cli import entry_point; entry_point()"
    command = [sys.executable, "-c", entry, "doctor", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"]
    checks = {check["name"]: check for check in report["checks"]}
    assert checks[RECOGNITION]["status"] == "ok"
    assert "Hello" in checks[RECOGNITION]["detail"]
    assert checks[AI_POSTPROCESSING]["status"] in ("ok", "info")
