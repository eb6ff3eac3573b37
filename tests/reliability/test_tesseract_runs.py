"""The real-engine episodes with Tesseract, short: a soak across recycles whose every text
must equal the engine called directly, and damaged scans that end ok or with a typed error.
``python -m tests.reliability tesseract`` (in ``make soak``) runs them long."""

from __future__ import annotations

from pathlib import Path

import pytest

from .aspose_runs import aspose_soak, fuzz
from .mutations import SCANS


@pytest.mark.tesseract
def test_a_soak_across_recycles_gives_the_direct_engines_text_once_per_input() -> None:
    images = 3 * len(SCANS)
    report = aspose_soak(images, {"max_jobs_per_worker": 3}, engine="tesseract")
    assert report.problems == []
    assert (report.ok, report.same_text, report.different) == (images, images, [])
    assert report.exits.get("max_jobs", 0) >= 4  # every worker served at most 3 jobs
    assert sum(report.errors.values()) == 0


@pytest.mark.tesseract
def test_damaged_scans_end_ok_or_with_a_typed_error_and_the_pool_keeps_serving(
    tmp_path: Path,
) -> None:
    report = fuzz(tmp_path, 8, seed=5, engine="tesseract")
    assert report.problems == []
    assert sum(report.outcomes.values()) == 8
