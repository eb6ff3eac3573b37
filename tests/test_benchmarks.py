"""Smoke test of the benchmark harness: the quick fake-engine comparison, end to end.

It runs ``python -m benchmarks`` as a user would (each scenario in its own process), so
it checks the outputs' shape, never the numbers: timings on a shared machine are noise.
"""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocrpool.exports import ExportFormat

REPO = Path(__file__).resolve().parent.parent
REQUIRED_COLUMNS = [
    "workload",
    "engine",
    "scenario",
    "round_index",
    "status",
    "workers",
    "jobs",
    "jobs_planned",
    "images_per_s",
    "cpu_s_per_image",
    "p50_ms",
    "p99_ms",
    "p99_recycle_ms",
]
QUICK_SCENARIOS = {
    "fake-noop": ["ocrpool-jobs", "ocrpool-steady", "pebble", "pebble-steady"],
    "fake-leak": ["inprocess-tuned", "ocrpool-jobs"],
}


def _benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
def test_quick_consolidated_run_writes_one_csv_of_every_workload_and_round(
    tmp_path: Path,
) -> None:
    done = _benchmarks("--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr

    with (tmp_path / "results.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None
        assert reader.fieldnames[: len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS
        rows = list(reader)
    ran = {(row["workload"], row["scenario"], row["round_index"], row["engine"]) for row in rows}
    assert len(ran) == len(rows) == 2 * sum(len(names) for names in QUICK_SCENARIOS.values())
    assert ran == {
        (workload, scenario, str(round_index), "fake")
        for workload, names in QUICK_SCENARIOS.items()
        for scenario in names
        for round_index in (0, 1)
    }
    # Alternating rounds: the second runs the first's order backwards.
    order = [(row["workload"], row["scenario"]) for row in rows]
    assert order[: len(rows) // 2] == order[len(rows) // 2 :][::-1]
    finished = [row for row in rows if row["status"] == "ok"]
    assert all(int(row["jobs"]) == int(row["jobs_planned"]) for row in finished)
    assert all(row["failed"] == "0" and row["text_identical"] == "True" for row in finished)

    with (tmp_path / "samples.csv").open(newline="") as handle:
        sampled = {(s["workload"], s["scenario"], s["round_index"]) for s in csv.DictReader(handle)}
    assert sampled == {key[:3] for key in ran}
    markdown = (tmp_path / "results.md").read_text()
    assert "## Goals (issue 19)" in markdown and "| fake-leak | ocrpool-jobs |" in markdown
    for workload in QUICK_SCENARIOS:
        for plot in ("rss", "throughput"):
            path = tmp_path / "plots" / f"{workload}-{plot}.png"
            assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args",
    [
        ["--workloads", "no-such-workload"],
        ["--rounds", "0"],
        ["compare", "--scenarios", "no-such-scenario"],
        ["compare", "--engine-option", "no-equals-sign"],
    ],
)
def test_bad_arguments_are_usage_errors(args: list[str], tmp_path: Path) -> None:
    done = _benchmarks(*args, "--quick", "--out", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert not (tmp_path / "results.csv").exists()


def test_a_missing_bench_extra_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import __main__ as entry

    monkeypatch.setattr(entry, "NEEDED", ("psutil", "no_such_module_of_the_extra"))
    assert entry.main() == 2
    error = capsys.readouterr().err
    assert "needs the 'bench' extra (missing: no_such_module_of_the_extra)" in error
    assert "pip install -e '.[bench]'" in error


@pytest.mark.parametrize("command", ["report", "readme"])
def test_report_and_readme_of_a_folder_without_a_comparison_are_usage_errors(
    command: str, tmp_path: Path
) -> None:
    (tmp_path / "results.csv").write_text("scenario,engine\nocrpool-jobs,fake\n")  # old format
    done = _benchmarks(command, "--out", str(tmp_path))
    assert done.returncode == 2 and "cannot read the comparison" in done.stderr


@pytest.mark.slow
def test_startup_mode_compares_both_start_methods(tmp_path: Path) -> None:
    done = _benchmarks("startup", "--jobs", "6", "--rounds", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "startup.md").read_text().splitlines()[2:]
    methods = [row.split("|")[1].strip() for row in rows]
    assert methods == ["spawn", "forkserver", "forkserver", "spawn"]
    assert all(row.split("|")[3].strip() == "6" for row in rows)


@pytest.mark.slow
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
    from benchmarks.studies import options

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


def _trial(setting: str, round_index: int, cpu: float, **changes: Any) -> Any:
    from benchmarks.studies.engine_tuning import SHORT, Trial

    texts = {"phototest.tif": ("This is a lot of 12 point text to test the\nocr code",)}
    measured: dict[str, Any] = dict(
        setting=setting,
        phase=SHORT,
        round_index=round_index,
        batch=0,
        jobs=9,
        warmup_cpu_s=2.0,
        warmup_s=2.5,
        cpu_s_per_image=cpu,
        s_per_image=cpu,
        rss_mb=500.0,
        rss_slope_mb_per_job=0.5,
        threads=13,
        vm_gb=3.6,
        texts=texts if round_index == 0 else {},
    )
    return Trial(**{**measured, **changes})


def test_recall_is_counted_over_the_window_evaluation_mode_returns() -> None:
    from benchmarks.studies.recall import complete_words, recall

    truth = "The (quick) [brown] fox jumps! Over the lazy dog."
    assert complete_words("The quick brown fo") == 3
    assert recall("the QUICK, brown", truth, 3).share == 1.0
    missed = recall("The quick brwn fox jumps over every lazy dog", truth, 5)
    assert (missed.found, missed.window) == (4, 5)  # words past the window earn nothing
    assert recall("the the the", "the fox the", 3).found == 2  # each word as often as in both


def test_only_settings_cheaper_in_every_round_with_the_same_text_are_candidates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Verdicts of ``python -m benchmarks tune-engine`` on made-up trials (no Aspose)."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.studies.engine_report import summarise, verdict
    from benchmarks.studies.engine_tuning import BASELINE, SHORT, Group, Setting

    settings = [BASELINE] + [Setting(n, Group.RUNTIME, n) for n in "ABCDEF"]
    untuned = [1.40, 1.50, 1.45]
    trials = [_trial(BASELINE.name, r, cpu) for r, cpu in enumerate(untuned)]
    trials += [_trial("A", r, cpu * 0.94) for r, cpu in enumerate(untuned)]
    trials += [_trial("B", r, cpu * (0.9 if r else 1.01)) for r, cpu in enumerate(untuned)]
    trials += [_trial("C", r, cpu * 0.9, rss_mb=600.0) for r, cpu in enumerate(untuned)]
    trials += [_trial("E", r, cpu * 0.995) for r, cpu in enumerate(untuned)]
    trials += [_trial("F", r, cpu * 0.9) for r, cpu in enumerate(untuned[:2])]
    other_text = {"phototest.tif": ("This is a lot of 12 point text",)}
    trials += [
        _trial("D", r, cpu * 0.5, texts=other_text if r == 0 else {})
        for r, cpu in enumerate(untuned)
    ]
    summaries = {s.setting.name: s for s in summarise(trials, settings, SHORT)}
    baseline = summaries[BASELINE.name]
    assert summaries["A"].changes == pytest.approx([-0.06 * c / (c + 0.04) for c in untuned])
    assert {name: verdict(s, baseline) for name, s in summaries.items()} == {
        BASELINE.name: "reference",
        "A": "candidate",
        "B": "no gain in every round",
        "C": "saves CPU, but RSS +20%",
        "E": "lower in every round, by under 2%",
        "F": "incomplete: compared in 2 of 3 rounds",
        "D": "changes the text of 1 image(s): not adopted",
    }
    assert summaries["D"].text_differs == ("phototest.tif",)
    assert summaries["A"].recall.window == 12  # phototest's ground truth, cut like the text
    assert summaries["D"].recall.found == 8


def test_study_turns_rotate_so_no_worker_runs_twice_in_a_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.harness.method import turn_order

    workers = ["untuned", "a", "b", "c"]
    sequence = [w for turn in range(8) for w in turn_order(workers, turn)]
    assert all(first != second for first, second in itertools.pairwise(sequence))
    places = {w: sorted(turn_order(workers, t).index(w) for t in range(4)) for w in workers}
    assert all(p == [0, 1, 2, 3] for p in places.values())


def test_peers_run_the_same_recognition_with_the_runtime_untuned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user of pebble or ProcessPoolExecutor writes Aspose's documented code: the same
    recognition options as ocrpool's, the .NET runtime as it comes."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.comparisons.scenarios import DOTNET_DEFAULTS, Plan, standard_scenarios

    plan = Plan("aspose", {"language": "eng"}, ("a.png",), workers=2)
    scenarios = {s.name: s for s in standard_scenarios(50, 400.0)}
    assert plan.options_for(scenarios["ocrpool-jobs"]) == {"language": "eng"}
    for peer in ("pebble", "cf-ppe", "pebble-steady", "cf-ppe-steady"):
        assert plan.options_for(scenarios[peer]) == {"language": "eng", **DOTNET_DEFAULTS}
        assert plan.recognises_alike(scenarios[peer])
    assert not plan.recognises_alike(scenarios["inprocess-reuse"])  # Aspose's own threads
    assert plan.recognises_alike(scenarios["inprocess-tuned"])
    dotnet = scenarios["inprocess-dotnet"]  # what a worker runs, in a plain process
    assert plan.options_for(dotnet) == {"language": "eng", **DOTNET_DEFAULTS}
    fake = Plan("fake", {"delay": 0.01}, ("a.png",), workers=2)
    assert fake.options_for(scenarios["pebble"]) == {"delay": 0.01}


@pytest.mark.slow
@pytest.mark.aspose
def test_engine_study_sets_the_runtime_before_it_starts(tmp_path: Path) -> None:
    """One quick trial each: server GC, set in the trial's environment before the runtime
    loads, shows in the runtime's own address space."""
    done = _benchmarks(
        "tune-engine", "--quick", "--settings", "COMPlus_gcServer=1", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    with (tmp_path / "tune-engine" / "results.csv").open(newline="") as handle:
        rows = {row["setting"]: row for row in csv.DictReader(handle)}
    assert list(rows) == ["untuned", "COMPlus_gcServer=1"]
    assert rows["COMPlus_gcServer=1"]["text_differs"] == ""
    assert float(rows["COMPlus_gcServer=1"]["vm_gb"]) > 2 * float(rows["untuned"]["vm_gb"])
    assert "| `COMPlus_gcServer=1` |" in (tmp_path / "tune-engine" / "results.md").read_text()
