"""Writing results: ``results.csv``, ``results.md`` and the PNG plots."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.machine import Machine, load_average, this_machine
from benchmarks.metrics import Measures, in_window
from benchmarks.runner import Run
from benchmarks.scenarios import Scenario
from benchmarks.targets import Verdict

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RSS_PLOT = "rss.png"
THROUGHPUT_PLOT = "throughput.png"
LOG_SCALE_SPREAD = 20
"""Throughputs further apart than this are drawn on a log scale (no-op jobs in-process
run thousands of times faster than through any pool)."""


def _jobs(row: Measures) -> str:
    """Jobs finished, and of how many when a scenario stopped early."""
    return str(row.jobs) if row.jobs == row.jobs_planned else f"{row.jobs}/{row.jobs_planned}"


def _field(name: str, decimals: int = 0) -> Callable[[Measures], str]:
    return lambda row: cell(getattr(row, name), decimals)


_TABLE_COLUMNS: tuple[tuple[str, Callable[[Measures], str]], ...] = (
    ("scenario", _field("scenario")),
    ("status", _field("status")),
    ("jobs", _jobs),
    ("images/s", _field("images_per_s", 2)),
    ("CPU s/image", _field("cpu_s_per_image", 3)),
    ("p50 ms", _field("p50_ms", 1)),
    ("p99 ms", _field("p99_ms", 1)),
    ("p99 recycling ms", _field("p99_recycle_ms", 1)),
    ("peak RSS MB", _field("peak_total_rss_mb")),
    ("RSS MB/job", _field("rss_slope_mb_per_job", 3)),
    ("failed", _field("failed")),
    ("recycles", _field("recycles")),
    ("other load", _field("other_load", 2)),
)


@dataclass(frozen=True)
class Header:
    """What the Markdown says above the table: how, when and where the numbers were taken."""

    title: str
    command: str
    started_utc: str
    duration_s: float
    machine: Machine
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    setup: tuple[str, ...]
    """Lines about the run itself: engine, options, inputs, workers, limits."""

    def markdown(self) -> list[str]:
        lines = [
            f"# {self.title}",
            "",
            f"`{self.command}`, started {self.started_utc}, took {self.duration_s / 60:.1f} min.",
            "",
        ]
        lines += [f"- {line}" for line in self.machine.describe()]
        lines.append(
            "- load average (1/5/15 min): at start "
            + "/".join(f"{v:.2f}" for v in self.load_start)
            + ", at end "
            + "/".join(f"{v:.2f}" for v in self.load_end)
        )
        lines += [f"- {line}" for line in self.setup]
        return lines


@dataclass(frozen=True)
class Started:
    """When, and on how busy a machine, a run started: its ``Header`` is made at the end."""

    utc: str
    monotonic: float
    load: tuple[float, float, float]

    @classmethod
    def now(cls) -> Started:
        utc = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return cls(utc, time.monotonic(), load_average())

    def header(self, title: str, command: str, setup: Sequence[str]) -> Header:
        return Header(
            title=title,
            command=command,
            started_utc=self.utc,
            duration_s=time.monotonic() - self.monotonic,
            machine=this_machine(),
            load_start=self.load,
            load_end=load_average(),
            setup=tuple(setup),
        )


def cell(value: Any, decimals: int = 2) -> str:
    """A value as the tables show it: ``-`` for a missing measure."""
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{decimals}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows as CSV, columns in the rows' order; a missing measure is an empty cell."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    key: "" if isinstance(value, float) and math.isnan(value) else value
                    for key, value in row.items()
                }
            )


def measures_table(rows: Sequence[Measures]) -> list[str]:
    return markdown_table(
        [header for header, _ in _TABLE_COLUMNS],
        [[show(row) for _, show in _TABLE_COLUMNS] for row in rows],
    )


_DEFINITIONS = (
    "Each scenario runs in its own process; the benchmark samples the total RSS and CPU time "
    "of that process's whole tree every 100 ms and stops the tree when it hangs "
    "(status `hung`: no job finished within the stall limit), runs out of time (`timeout`) "
    "or memory (`rss-limit`). `jobs` counts the jobs that finished (`finished/planned` when "
    "the time budget or a stop cut the run short).",
    "The timed window runs from the end of warm-up (engine or all workers ready) to the last "
    "result. images/s = jobs / window; CPU s/image = CPU time of the whole tree in the "
    "window (exited workers included) / jobs.",
    "Latency runs from submitting a job to its result, with a fixed number of jobs in flight "
    "per worker (so p50 is about that many service times). `p99 recycling` is the p99 of the "
    "jobs whose lifetime overlaps a recycle: from an old worker's last result to its "
    "replacement's first.",
    "RSS MB/job is the least-squares slope of total RSS against jobs finished in the window; "
    "peak RSS is the highest total over the whole run (start-up included).",
    "`other load` is how many cores other processes on the machine kept busy during the "
    "window, on average (machine-wide busy CPU time minus the tree's): the noise in the run.",
    "With several rounds (in alternating order), each row is the round with the median "
    "images/s; `runs.csv` has every round.",
)


def results_markdown(
    header: Header,
    rows: Sequence[Measures],
    scenarios: Sequence[Scenario],
    verdicts: Sequence[Verdict],
) -> str:
    lines = [*header.markdown(), "", "## Results", "", *measures_table(rows), ""]
    lines += [f"- `{s.name}`: {s.description}" for s in scenarios]
    verdict_rows = [
        [v.target, v.measured, {True: "met", False: "NOT met", None: "-"}[v.met]] for v in verdicts
    ]
    lines += ["", "## Targets", "", *markdown_table(["target", "measured", ""], verdict_rows)]
    lines += ["", "## How it is measured", ""]
    lines += [f"- {definition}" for definition in _DEFINITIONS]
    lines += [
        "",
        f"![total RSS of each scenario's process tree]({RSS_PLOT})",
        "",
        f"![throughput]({THROUGHPUT_PLOT})",
        "",
    ]
    return "\n".join(lines)


def _figure(width: float, height: float, columns: int = 1) -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot.subplots(1, columns, figsize=(width, height), squeeze=False)


def plot_rss(path: Path, runs: Sequence[Run]) -> None:
    """Total RSS against time since start (left) and, in the timed window, against jobs
    finished (right: its slope is the RSS growth per job)."""
    figure, axes = _figure(13, 5, columns=2)
    by_time, by_jobs = axes[0]
    for run in runs:
        times = [s.tree.at - run.started for s in run.samples]
        by_time.plot(times, [s.tree.rss_mb for s in run.samples], label=run.scenario.name)
        window = in_window(run)
        by_jobs.plot([s.jobs_done for s in window], [s.tree.rss_mb for s in window])
    by_time.set(xlabel="seconds since the scenario started", ylabel="total RSS of the tree (MB)")
    by_jobs.set(xlabel="jobs finished", ylabel="total RSS of the tree (MB)")
    by_time.legend(fontsize="small")
    for axis in (by_time, by_jobs):
        axis.grid(alpha=0.3)
    figure.suptitle("Total RSS of each scenario's process tree (sampled every 100 ms)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def plot_throughput(path: Path, rows: Sequence[Measures]) -> None:
    """One bar per scenario; a stopped scenario's bar is hatched and labelled."""
    figure, axes = _figure(9, 0.5 * len(rows) + 1.5)
    axis = axes[0][0]
    names = [row.scenario for row in rows][::-1]
    rates = [0.0 if math.isnan(row.images_per_s) else row.images_per_s for row in rows][::-1]
    bars = axis.barh(names, rates, color="tab:blue")
    for bar, row in zip(bars, rows[::-1], strict=True):
        label = f" {bar.get_width():.3g}/s"
        if row.status != "ok":
            bar.set_hatch("//")
            bar.set_color("tab:red")
            label += f" ({row.status}: {row.jobs}/{row.jobs_planned} jobs)"
        axis.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center")
    axis.set(xlabel="images (jobs) per second", title=f"Throughput, {rows[0].engine} engine")
    positive = [rate for rate in rates if rate > 0] or [1.0]
    if max(positive) / min(positive) > LOG_SCALE_SPREAD:
        axis.set_xscale("log")
        axis.set_xlim(min(positive) / 2, max(positive) * 8)
    else:
        axis.set_xlim(0, max(positive) * 1.4)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_results(
    out: Path,
    header: Header,
    scenarios: Sequence[Scenario],
    runs: Sequence[Run],
    rows: Sequence[Measures],
    all_rounds: Sequence[Measures],
    verdicts: Sequence[Verdict],
) -> list[Path]:
    """Write the comparison's files into ``out``: ``runs`` are the runs ``rows`` show."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", [dataclasses.asdict(row) for row in rows])
    write_csv(out / "runs.csv", [dataclasses.asdict(row) for row in all_rounds])
    (out / "results.md").write_text(results_markdown(header, rows, scenarios, verdicts))
    plot_rss(out / RSS_PLOT, runs)
    plot_throughput(out / THROUGHPUT_PLOT, rows)
    return [
        out / name for name in ("results.csv", "runs.csv", "results.md", RSS_PLOT, THROUGHPUT_PLOT)
    ]
