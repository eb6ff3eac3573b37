"""``results.md`` and the plots of a comparison, drawn from its files alone
(``results.csv``, ``samples.csv``, ``run.json``), so they can be redrawn without a re-run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.comparisons.goals import Verdict, judge
from benchmarks.comparisons.metrics import Measures, representative
from benchmarks.comparisons.suite import RESULTS, RUN, SAMPLES, SampleRow, Workload
from benchmarks.harness.plots import Rates, RssSeries, plot_rates, plot_rss
from benchmarks.harness.tables import Header, cell, markdown_table, read_csv

PLOTS = "plots"
_DEFINITIONS = (
    "Each scenario runs in its own process; the benchmark samples the total RSS and CPU time "
    "of that process's whole tree every 100 ms and stops the tree when it hangs "
    "(status `hung`: no job finished within the stall limit), runs out of time (`timeout`) "
    "or memory (`rss-limit`).",
    "The timed window runs from the end of warm-up (engine or all workers ready) to the last "
    "result. images/s = jobs / window; CPU s/image = CPU time of the whole tree in the "
    "window (exited workers included) / jobs.",
    "Latency runs from submitting a job to its result, with a fixed number of jobs in flight "
    "per worker (so p50 is about that many service times). `p99 recycling` is the p99 of the "
    "jobs whose lifetime overlaps a recycle: from an old worker's last result to its "
    "replacement's first.",
    "RSS MB/job is the least-squares slope of total RSS against jobs finished in the window; "
    "peak RSS is the highest total over the whole run (start-up included).",
    "`text` says whether every text a run returned is the one most runs of its workload "
    "(with the same recognition options) returned for that input.",
    "`other load` is how many cores other processes on the machine kept busy during the "
    "window, on average (machine-wide busy CPU time minus the tree's): the noise in the run.",
    "Rounds run in alternating order; each row is the round with the median images/s, and "
    "`images/s by round` shows every round (`results.csv` has every measure of every round).",
)


@dataclass(frozen=True)
class Results:
    """A comparison's files, read back."""

    header: Header
    workloads: tuple[Workload, ...]
    rows: list[Measures]
    samples: list[SampleRow]


def load(out: Path) -> Results:
    run = json.loads((out / RUN).read_text())
    return Results(
        Header.from_json(run["header"]),
        tuple(Workload(**w) for w in run["workloads"]),
        read_csv(out / RESULTS, Measures),
        read_csv(out / SAMPLES, SampleRow),
    )


def workloads(rows: Sequence[Measures]) -> list[str]:
    return list(dict.fromkeys(row.workload for row in rows))


def medians(rows: Sequence[Measures]) -> list[Measures]:
    """The median round of each workload's scenario, in the order they first ran."""
    keys = dict.fromkeys((row.workload, row.scenario) for row in rows)
    return [
        representative([row for row in rows if (row.workload, row.scenario) == key]) for key in keys
    ]


def _rounds(rows: Sequence[Measures], shown: Measures) -> str:
    mine = sorted(
        (row for row in rows if (row.workload, row.scenario) == (shown.workload, shown.scenario)),
        key=lambda row: row.round_index,
    )
    return " / ".join(cell(row.images_per_s, 3) for row in mine)


def _status(row: Measures) -> str:
    jobs = str(row.jobs) if row.jobs == row.jobs_planned else f"{row.jobs}/{row.jobs_planned}"
    return jobs if row.status == "ok" else f"{row.status}: {jobs}"


def results_table(rows: Sequence[Measures]) -> list[str]:
    headers = [
        "workload", "scenario", "jobs", "images/s by round", "CPU s/image", "p50 ms",
        "p99 ms", "p99 recycling ms", "peak RSS MB", "mean RSS MB", "RSS MB/job", "recycles",
        "text", "other load",
    ]  # fmt: skip
    text = {True: "same", False: "differs", None: "-"}
    table = [
        [
            row.workload, row.scenario, _status(row), _rounds(rows, row),
            cell(row.cpu_s_per_image, 3), cell(row.p50_ms, 1), cell(row.p99_ms, 1),
            cell(row.p99_recycle_ms, 1), cell(row.peak_total_rss_mb, 0),
            cell(row.mean_total_rss_mb, 0), cell(row.rss_slope_mb_per_job, 3),
            str(row.recycles), text[row.text_identical], cell(row.other_load, 2),
        ]
        for row in medians(rows)
    ]  # fmt: skip
    return markdown_table(headers, table)


def goals_table(verdicts: Sequence[Verdict]) -> list[str]:
    met = {True: "met", False: "**not met**", None: "not run"}
    return markdown_table(
        ["goal", "by round", "median", "median round", ""],
        [[v.goal, " / ".join(v.rounds) or "-", v.median, v.detail, met[v.met]] for v in verdicts],
    )


def plot_paths(workload: str) -> tuple[str, str]:
    """Where a workload's plots go, relative to the results folder."""
    return f"{PLOTS}/{workload}-rss.png", f"{PLOTS}/{workload}-throughput.png"


def draw(out: Path, header: Header, rows: Sequence[Measures], samples: Sequence[SampleRow]) -> None:
    """Per workload: total RSS of each scenario's median round, and images/s by round."""
    caption = header.caption()
    for workload in workloads(rows):
        rss, rates = plot_paths(workload)
        shown = [row for row in medians(rows) if row.workload == workload]
        series = []
        for row in shown:
            mine = [
                s
                for s in samples
                if (s.workload, s.scenario, s.round_index)
                == (workload, row.scenario, row.round_index)
            ]
            series.append(
                RssSeries(
                    row.scenario,
                    tuple(s.seconds for s in mine),
                    tuple(s.jobs_done for s in mine),
                    tuple(s.rss_mb for s in mine),
                    tuple(s.in_window for s in mine),
                )
            )
        plot_rss(
            out / rss,
            series,
            f"Total RSS of each scenario's process tree, {workload} (median round, every 100 ms)",
            caption,
        )
        plot_rates(
            out / rates,
            [
                Rates(
                    row.scenario,
                    tuple(
                        r.images_per_s
                        for r in rows
                        if (r.workload, r.scenario) == (workload, row.scenario)
                    ),
                    "" if row.status == "ok" else f"{row.status}: {row.jobs}/{row.jobs_planned}",
                )
                for row in shown
            ],
            f"Throughput, {workload}",
            caption,
        )


def markdown(results: Results) -> str:
    header, rows = results.header, results.rows
    lines = [*header.markdown(), "", "## Goals (issue 19)", "", *goals_table(judge(rows))]
    lines += ["", "## Results", "", *results_table(rows), ""]
    for workload in results.workloads:
        lines += [f"- `{workload.name}` `{s.name}`: {s.description}" for s in workload.chosen()]
    lines += ["", "## How it is measured", "", *(f"- {d}" for d in _DEFINITIONS), ""]
    for name in workloads(rows):
        rss, rates = plot_paths(name)
        lines += [f"![total RSS, {name}]({rss})", "", f"![throughput, {name}]({rates})", ""]
    return "\n".join(lines)


def publish(out: Path) -> list[Path]:
    """Write ``results.md`` and the plots of the comparison in ``out`` from its files."""
    results = load(out)
    (out / "results.md").write_text(markdown(results))
    draw(out, results.header, results.rows, results.samples)
    return [out / "results.md", *(out / p for w in workloads(results.rows) for p in plot_paths(w))]
