"""The consolidated comparison's files, goals and README block, from rows made up here
(nothing runs): what ``results.csv`` holds is what the report and README say."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks.comparisons import readme, report
from benchmarks.comparisons.goals import GOALS, judge
from benchmarks.comparisons.metrics import Measures
from benchmarks.comparisons.suite import ASPOSE, FAKE_NOOP, RESULTS, SampleRow, write_files
from benchmarks.harness import plots
from benchmarks.harness.machine import Machine
from benchmarks.harness.tables import Header, read_csv, write_csv

NAN = float("nan")
COMMITTED = Path(report.__file__).resolve().parent.parent / "results"


def row(workload: str, scenario: str, round_index: int, rate: float, **changes: Any) -> Measures:
    measured: dict[str, Any] = dict(
        workload=workload, engine="aspose" if workload == "aspose" else "fake",
        scenario=scenario, round_index=round_index, status="ok", workers=2, jobs=100,
        jobs_planned=100, images_per_s=rate, cpu_s_per_image=1.8, p50_ms=2000.0,
        p99_ms=4000.0, p99_recycle_ms=NAN, recycle_jobs=0, peak_total_rss_mb=1100.0,
        mean_total_rss_mb=1050.0,
        rss_slope_mb_per_job=0.0, ready_rss_mb=1000.0, failed=0, recycles=0, exit_causes="",
        text_identical=True, other_load=0.05, startup_cpu_s=5.0, window_s=60.0,
        peak_ray_rss_mb=NAN, message="",
    )  # fmt: skip
    return Measures(**{**measured, **changes})


def rounds(scenario: str, rates: list[float], **changes: Any) -> list[Measures]:
    return [row("aspose", scenario, r, rate, **changes) for r, rate in enumerate(rates)]


def verdict(rows: list[Measures], words: str) -> Any:
    [found] = [v for v in judge(rows) if words in v.goal]
    return found


PEER_RACE = [
    *rounds("ocrpool-jobs", [1.20, 1.00, 1.15]),
    *rounds("pebble", [1.00, 1.00, 1.00]),
    *rounds("cf-ppe", [1.05, 0.90, 1.00]),
]


def test_a_goal_compares_scenarios_of_the_same_round_and_is_judged_on_the_median() -> None:
    real_ocr = verdict(PEER_RACE, "1.10x the faster of pebble and cf-ppe")
    # Each round against its faster peer: 1.20/1.05, 1.00/1.00, 1.15/1.00.
    assert real_ocr.rounds == ("1.14x", "1.00x", "1.15x")
    assert real_ocr.median == "1.14x" and real_ocr.met
    assert real_ocr.detail.startswith("ocrpool-jobs 1.2/s vs cf-ppe 1.05/s")
    assert real_ocr.detail.endswith("identical text")


def test_differing_text_fails_the_real_ocr_goal_however_fast() -> None:
    rows = [*PEER_RACE[:-1], dataclasses.replace(PEER_RACE[-1], text_identical=False)]
    real_ocr = verdict(rows, "1.10x the faster of pebble and cf-ppe")
    assert real_ocr.met is False and "text differs in cf-ppe" in real_ocr.detail


def test_rounds_a_scenario_did_not_finish_are_left_out_and_a_goal_never_run_says_so() -> None:
    rows = [
        *rounds("ocrpool-jobs", [1.0, 1.0, 1.0], p99_ms=4000.0, recycles=2),
        *rounds("ocrpool-steady", [1.0, 1.0], p99_ms=2000.0),
        row("aspose", "ocrpool-steady", 2, NAN, status="hung", p99_ms=100.0),
    ]
    p99 = verdict(rows, "p99 while recycling (ocrpool-jobs)")
    assert p99.rounds == ("2.00x", "2.00x") and p99.met is False  # at most 1.2x
    ray = verdict(rows, "Ray backend")
    assert (ray.rounds, ray.median, ray.met) == ((), "-", None)
    assert [v.met for v in judge([])] == [None] * len(GOALS)


def test_the_cpu_limit_and_a_workers_cpu_come_from_the_in_process_scenarios() -> None:
    rows = [
        row("aspose", "ocrpool-jobs", 0, 1.0),
        row("aspose", "inprocess-tuned", 0, 0.5, cpu_s_per_image=1.9),
        row("aspose", "ocrpool-steady", 0, 1.0, cpu_s_per_image=1.7),
        row("aspose", "inprocess-dotnet", 0, 0.5, cpu_s_per_image=2.0),
    ]
    limit = verdict(rows, "CPU limit")
    assert limit.rounds == ("0.950",) and limit.met  # 1.0 / (2 workers / 1.9 CPU-s)
    worker = verdict(rows, "CPU per image")
    assert worker.rounds == ("0.85x",) and worker.met  # 1.7 / 2.0, at most 0.92x


def test_results_csv_reads_back_to_the_rows_written(tmp_path: Path) -> None:
    rows = [*PEER_RACE, row("fake-noop", "pebble", 0, 88.5, text_identical=None)]
    write_csv(tmp_path / "results.csv", [dataclasses.asdict(r) for r in rows])
    back = read_csv(tmp_path / "results.csv", Measures)
    assert repr(back) == repr(rows)  # nan and None included
    assert math.isnan(back[0].p99_recycle_ms) and back[-1].text_identical is None


def _header() -> Header:
    machine = Machine(2, 24_000.0, "Test CPU", "Linux", "3.11.7", {"ocrpool": "0.1.0"})
    return Header(
        "test run", "python -m benchmarks", "2026-12-03 21:00 UTC", 120.0, machine,
        (0.1, 0.1, 0.1), (0.2, 0.2, 0.2), ("made up",),
    )  # fmt: skip


@pytest.mark.slow
def test_the_report_and_the_readme_block_come_from_the_files_alone(tmp_path: Path) -> None:
    rows = [*PEER_RACE, *[row("fake-noop", "ocrpool-jobs", r, 1000.0 + r) for r in range(3)]]
    samples = [
        SampleRow(r.workload, r.scenario, r.round_index, t / 10, t, 100.0 + t, t > 2)
        for r in rows
        for t in range(10)
    ]
    out = tmp_path / "results"
    write_files(out, _header(), (FAKE_NOOP, ASPOSE), rows, samples)
    paths = report.publish(out)
    assert all(path.exists() for path in paths)
    markdown = (out / "results.md").read_text()
    assert "| aspose | ocrpool-jobs | 100 | 1.200 / 1.000 / 1.150 |" in markdown
    assert "| fake-noop | ocrpool-jobs | 100 | 1000.000 / 1001.000 / 1002.000 |" in markdown
    assert (out / "plots" / "aspose-rss.png").read_bytes().startswith(b"\x89PNG")

    page = tmp_path / "README.md"
    page.write_text(f"# title\n\n{readme.BEGIN}\nstale\n{readme.END}\n\nafter\n")
    text = readme.generated(page, report.load(out), out)
    assert text.startswith(f"# title\n\n{readme.BEGIN}\n`python -m benchmarks`, started")
    assert text.endswith(f"{readme.END}\n\nafter\n") and "stale" not in text
    assert "![total RSS, aspose](results/plots/aspose-rss.png)" in text
    assert "| real OCR: ocrpool-jobs ≥ 1.10x" in text
    page.write_text(text)
    assert readme.generated(page, report.load(out), out) == text  # nothing left to change


def test_a_readme_without_the_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"no .* block"):
        readme.replace_block("# README without a benchmark block\n", "rows")


def test_readme_shows_what_the_committed_results_generate() -> None:
    """README's benchmark block is generated (``python -m benchmarks readme``), never
    edited by hand: it must equal what ``benchmarks/results/`` generates now."""
    page = readme.DEFAULT_README
    assert (COMMITTED / RESULTS).is_file()
    assert readme.generated(page, report.load(COMMITTED), COMMITTED) == page.read_text()


def _drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the plots would save, kept for a look instead."""
    figures: list[Any] = []
    monkeypatch.setattr(plots, "save", lambda figure, *_: figures.append(figure))
    return figures


def test_plots_start_their_axes_at_zero_or_say_they_are_logarithmic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    drawn = _drawn(monkeypatch)
    close = [plots.Rates("ocrpool-jobs", (1.0, 1.1, 0.9)), plots.Rates("pebble", (0.95,))]
    plots.plot_rates(tmp_path / "a.png", close, "title", "caption")
    far = [plots.Rates("inprocess", (18_000.0,)), plots.Rates("pebble", (88.0,))]
    plots.plot_rates(tmp_path / "b.png", far, "title", "caption")
    leak = plots.RssSeries("leak", (0.0, 1.0, 2.0, 3.0), (0, 10, 20, 30),
                           (500.0, 510.0, 520.0, 530.0), (True, True, True, True))  # fmt: skip
    plots.plot_rss(tmp_path / "c.png", [leak], "title", "caption")
    (linear,), (log,), (by_time, by_jobs) = (figure.axes for figure in drawn)
    assert linear.get_xlim()[0] == 0 and "log" not in linear.get_xlabel()
    assert log.get_xscale() == "log" and "log scale" in log.get_xlabel()
    for axis in (by_time, by_jobs):
        assert axis.get_ylim()[0] == 0 and axis.get_xlim()[0] == 0
        assert "(MB)" in axis.get_ylabel()
    assert by_time.get_legend().get_texts()[0].get_text() == "leak (+1.00 MB/job)"


def test_the_mean_rss_weighs_each_sample_by_the_time_it_stood_for() -> None:
    from benchmarks.comparisons.metrics import time_mean

    # 100 MB for 9 s, then a 1 s spike to 1,100 MB and back: peak 1,100, mean 150
    points = [(0.0, 100.0), (9.0, 100.0), (9.5, 1100.0), (10.0, 100.0)]
    assert time_mean(points) == pytest.approx(150.0)
    assert time_mean([(3.0, 42.0)]) == 42.0
