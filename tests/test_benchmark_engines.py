"""``python -m benchmarks engines``' report, from readings made up here (no engine runs)."""

from __future__ import annotations

import csv
from pathlib import Path

from benchmarks.engines import Reading, write

REPO = Path(__file__).resolve().parent.parent
PAGE = str(REPO / "tests" / "data" / "phototest.tif")
TRUTH = (REPO / "tests" / "data" / "phototest.gt.txt").read_text()


def reading(engine: str, round_index: int, cpu_s: float, text: str) -> Reading:
    return Reading(engine, round_index, (cpu_s,), (2,), (text,), 100.0, 0.5)


def test_cpu_per_page_is_the_median_round_and_recall_is_scored_on_aspose_s_window(
    tmp_path: Path,
) -> None:
    words = TRUTH.split()
    aspose_text = " ".join(words[:5])  # evaluation mode: the first words only
    readings = [
        reading("tesseract", 0, 0.4, TRUTH),
        reading("aspose", 0, 2.0, aspose_text),
        reading("aspose", 1, 3.0, aspose_text),
        reading("tesseract", 1, 0.6, TRUTH),
        reading("tesseract", 2, 0.5, TRUTH),
        reading("aspose", 2, 2.2, aspose_text),
    ]
    text = write([PAGE], readings, tmp_path, "python -m benchmarks engines")
    rows = {row["engine"]: row for row in csv.DictReader((tmp_path / "results.csv").open())}
    assert float(rows["tesseract"]["cpu_s_per_page"]) == 0.25  # 0.5 CPU-s, 2 pages
    assert float(rows["aspose"]["cpu_s_per_page"]) == 1.1
    assert rows["tesseract"]["recall_whole"] == "1.0"
    assert rows["aspose"]["recall_aspose_window_words"] == "4/4 words"  # 5 words, 4 whole
    assert float(rows["aspose"]["recall_whole"]) < 0.2
    assert "| tesseract | 0.250 (0.200 / 0.300 / 0.250) |" in text
