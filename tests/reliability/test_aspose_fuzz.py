"""Damaged real scans (PNG, TIFF, JPEG, PDF with flipped bytes) through the real engine:
each ends ok or with a typed error, and the pool still reads a good scan afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from .aspose_runs import fuzz


@pytest.mark.slow
@pytest.mark.aspose
def test_damaged_scans_end_ok_or_with_a_typed_error_and_the_pool_keeps_serving(
    tmp_path: Path,
) -> None:
    report = fuzz(tmp_path, 20, seed=5)
    assert report.problems == []
    assert sum(report.outcomes.values()) == 20
