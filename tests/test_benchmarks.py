"""Smoke test of the benchmark harness: the quick fake-engine comparison, end to end.

It runs ``python -m benchmarks`` as a user would (each scenario in its own process), so
it checks the outputs' shape, never the numbers: timings on a shared machine are noise.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from ocrpool.exports import ExportFormat

REPO = Path(__file__).resolve().parent.parent
REQUIRED_COLUMNS = [
    "scenario",
    "engine",
    "workers",
    "jobs",
    "images_per_s",
    "cpu_s_per_image",
    "p50_ms",
    "p99_ms",
    "peak_total_rss_mb",
    "rss_slope_mb_per_job",
    "failed",
    "recycles",
]
SCENARIOS = [
    "inprocess-reuse",
    "inprocess-tuned",
    "inprocess-leak",
    "ocrpool-jobs",
    "ocrpool-steady",
    "ocrpool-rss",
    "pebble",
    "pebble-steady",
    "cf-ppe",
    "cf-ppe-steady",
]


def _benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_quick_fake_comparison_writes_every_output(tmp_path: Path) -> None:
    done = _benchmarks("--engine", "fake", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr

    with (tmp_path / "results.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None
        assert reader.fieldnames[: len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS
        rows = list(reader)
    assert [row["scenario"] for row in rows] == SCENARIOS
    assert {row["engine"] for row in rows} == {"fake"}
    finished = [row for row in rows if row["status"] == "ok"]
    assert all(int(row["jobs"]) == int(row["jobs_planned"]) for row in finished)
    assert all(int(row["failed"]) == 0 for row in finished)

    markdown = (tmp_path / "results.md").read_text()
    assert "| scenario |" in markdown and "## Targets" in markdown
    for plot in ("rss.png", "throughput.png"):
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args",
    [["--scenarios", "no-such-scenario"], ["--engine-option", "no-equals-sign"]],
)
def test_bad_arguments_are_usage_errors(args: list[str], tmp_path: Path) -> None:
    done = _benchmarks("--engine", "fake", "--quick", "--out", str(tmp_path), *args)
    assert done.returncode == 2
    assert not (tmp_path / "results.csv").exists()


def test_startup_mode_compares_both_start_methods(tmp_path: Path) -> None:
    done = _benchmarks("startup", "--jobs", "6", "--rounds", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "startup.md").read_text().splitlines()[2:]
    methods = [row.split("|")[1].strip() for row in rows]
    assert methods == ["spawn", "forkserver", "forkserver", "spawn"]
    assert all(row.split("|")[3].strip() == "6" for row in rows)


def test_quick_service_benchmark_writes_its_results(tmp_path: Path) -> None:
    done = _benchmarks("service", "--engine", "fake", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    with (tmp_path / "service" / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["trial"], row["via"]) for row in rows] == [
        ("fake-noop-1-client", "direct"),
        ("fake-noop-1-client", "service"),
        ("fake-noop-8-clients", "direct"),
        ("fake-noop-8-clients", "service"),
        ("fake-kills", "service"),
    ]
    assert all(row["requests"] == row["answered"] == row["settled"] for row in rows)
    assert {row["http_500"] for row in rows} == {row["no_answer"] for row in rows} == {"0"}
    markdown = (tmp_path / "service" / "results.md").read_text()
    assert "overhead per request" in markdown and "load with kills" in markdown


def test_option_costs_are_per_page_and_rotation_is_what_it_adds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``python -m benchmarks options`` arithmetic, on made-up timings (no Aspose)."""
    monkeypatch.syspath_prepend(str(REPO))  # benchmarks/ is run from the repository
    from benchmarks import options

    steps = {options.RECOGNITION: 1.0, options.UPRIGHT: 1.5, options.SPELLCHECK: 0.5}
    steps |= {options.EXPORT + fmt.value: 0.1 for fmt in ExportFormat}
    timings = tuple(
        options.Timing(image, pages, step, seconds * pages, seconds * pages / 2)
        for image, pages in (("a.png", 1), ("b.tif", 3))
        for step, seconds in steps.items()
    )
    first_use = dict.fromkeys(steps, 2.0)
    rows = {row.option: row for row in options.rows(options.Measured(timings, first_use, 3))}
    assert rows[options.RECOGNITION].wall_ms_per_page == pytest.approx(1000)
    assert rows[options.ROTATE].wall_ms_per_page == pytest.approx(500)
    assert rows[options.ROTATE].cpu_ms_per_page == pytest.approx(250)
    assert rows[options.ROTATE].share_of_recognition == pytest.approx(0.5)
    assert rows[options.EXPORT + "pdf"].first_use_s == 2.0
    assert len(rows) == 3 + len(ExportFormat)


def test_real_ocr_against_the_peers_needs_identical_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.metrics import Measures
    from benchmarks.targets import judge

    def row(name: str, rate: float) -> Measures:
        nan = float("nan")
        return Measures(
            name, "aspose", 2, 100, rate, 1.3, nan, nan, nan, nan, 0, 0, "ok", 100,
            nan, 0, nan, nan, nan, 60.0, 0, "", "",
        )  # fmt: skip

    rows = {name: row(name, rate) for name, rate in [("ocrpool-jobs", 1.6), ("pebble", 1.5)]}
    [peers] = [v for v in judge(rows, "aspose", 2, []) if "same engine options" in v.target]
    assert peers.met and "1.07x" in peers.measured
    [peers] = [v for v in judge(rows, "aspose", 2, ["a.tif"]) if "same engine" in v.target]
    assert not peers.met and "differs" in peers.measured
