"""The benchmarks' plots, drawn so that they tell the truth at a glance: every axis starts
at zero unless its label says otherwise (a log scale), every axis names its unit, and a
caption under the plot names the run (command, date, machine)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness.method import slope

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOG_SCALE_SPREAD = 20
"""Rates further apart than this are drawn on a log scale, and the axis says so (no-op
jobs in-process run thousands of times faster than through any pool)."""


@dataclass(frozen=True)
class RssSeries:
    """One run's total RSS readings: when (seconds since its scenario started), how many
    jobs had finished by then, and whether the reading is in the timed window."""

    label: str
    seconds: tuple[float, ...]
    jobs_done: tuple[int, ...]
    rss_mb: tuple[float, ...]
    in_window: tuple[bool, ...]

    def window(self) -> list[tuple[int, float]]:
        return [
            (jobs, rss)
            for jobs, rss, inside in zip(self.jobs_done, self.rss_mb, self.in_window, strict=True)
            if inside
        ]


@dataclass(frozen=True)
class Rates:
    """One scenario's images/s in each round; ``note`` marks a run that was stopped."""

    label: str
    rounds: tuple[float, ...]
    note: str = ""

    def median_round(self) -> float:
        """The median round's rate (the lower middle one of an even count), as the
        tables pick it."""
        rated = [rate for rate in self.rounds if not math.isnan(rate)]
        return statistics.median_low(rated) if rated else math.nan


def _rate(value: float) -> str:
    return f"{value:,.0f}/s" if value >= 100 else f"{value:.3g}/s"


def figure(width: float, height: float, columns: int = 1) -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot.subplots(1, columns, figsize=(width, height), squeeze=False)


def save(figure: Figure, path: Path, title: str, caption: str) -> None:
    """Title above, the run's caption below, then write and free the figure."""
    from matplotlib import pyplot

    figure.suptitle(title)
    figure.text(0.01, 0.01, caption, fontsize="x-small", color="dimgray")
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def plot_rss(path: Path, series: Sequence[RssSeries], title: str, caption: str) -> None:
    """Total RSS against time since start (left) and, in the timed window, against jobs
    finished (right), each line labelled with its least-squares growth per job."""
    fig, axes = figure(13, 5.5, columns=2)
    by_time, by_jobs = axes[0]
    for one in series:
        points = one.window()
        growth = slope(points)
        label = one.label + ("" if math.isnan(growth) else f" ({growth:+.2f} MB/job)")
        by_time.plot(one.seconds, one.rss_mb, label=label)
        by_jobs.plot([jobs for jobs, _ in points], [rss for _, rss in points])
    by_time.set(
        xlabel="seconds since the scenario started (s)", ylabel="total RSS of the tree (MB)"
    )
    by_jobs.set(xlabel="jobs finished in the timed window", ylabel="total RSS of the tree (MB)")
    by_time.legend(fontsize="small")
    for axis in (by_time, by_jobs):
        axis.set_xlim(left=0)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    save(fig, path, title, caption)


def plot_rates(path: Path, rates: Sequence[Rates], title: str, caption: str) -> None:
    """One bar per scenario at its median round, a dot for each round, so the spread
    between rounds shows; a stopped scenario's bar is hatched and says why."""
    fig, axes = figure(9, 0.55 * len(rates) + 2)
    axis = axes[0][0]
    shown = rates[::-1]
    middles = [r.median_round() for r in shown]
    bars = axis.barh([r.label for r in shown], [0.0 if math.isnan(m) else m for m in middles])
    positive = [v for r in rates for v in r.rounds if v > 0] or [1.0]
    log = max(positive) / min(positive) > LOG_SCALE_SPREAD
    for index, (bar, one) in enumerate(zip(bars, shown, strict=True)):
        axis.plot(one.rounds, [index] * len(one.rounds), "k.", markersize=6)
        label = f" {_rate(bar.get_width())}"
        if one.note:
            bar.set_hatch("//")
            bar.set_color("tab:red")
            label += f" ({one.note})"
        right = max([bar.get_width(), *(v for v in one.rounds if not math.isnan(v))])
        axis.text(right * 1.1 if log else right + max(positive) * 0.02, index, label, va="center")
    unit = "images (jobs) per second"
    if log:
        axis.set_xscale("log")
        axis.set_xlim(min(positive) / 2, max(positive) * 8)
        axis.set_xlabel(f"{unit}, log scale (bar: median round; dots: each round)")
    else:
        axis.set_xlim(0, max(positive) * 1.4)
        axis.set_xlabel(f"{unit} (bar: median round; dots: each round)")
    axis.grid(axis="x", alpha=0.3)
    save(fig, path, title, caption)
