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


def test_startup_mode_compares_both_start_methods(tmp_path: Path) -> None:
    command = ["-m", "benchmarks", "startup", "--jobs", "6", "--rounds", "2", "--out"]
    done = subprocess.run(
        [sys.executable, *command, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "startup.md").read_text().splitlines()[2:]
    methods = [row.split("|")[1].strip() for row in rows]
    assert methods == ["spawn", "forkserver", "forkserver", "spawn"]
    assert all(row.split("|")[3].strip() == "6" for row in rows)
