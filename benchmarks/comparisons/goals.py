"""The goals of issue 19, judged from the rows of ``results.csv`` round by round.

Each goal compares scenarios of one workload that ran in the same round (so they met the
same load), gives one figure per round, and is met when the median of those figures (the
lower one of an even count: always a round's own) is within its bound; a goal whose
scenarios did not all finish in any round is "not run".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from benchmarks.comparisons.metrics import Measures

Rows = Mapping[str, Measures]
"""One round of one workload, by scenario name."""
PEERS = ("pebble", "cf-ppe")
STEADY_PEERS = ("pebble-steady", "cf-ppe-steady")


@dataclass(frozen=True)
class Verdict:
    goal: str
    rounds: tuple[str, ...]
    """The figure of each round that ran, formatted."""
    median: str
    detail: str
    """The median round's figures, for a reader to check the ratio."""
    met: bool | None


def _faster(rows: Rows, names: Sequence[str]) -> Measures | None:
    rated = [rows[n] for n in names if n in rows and not math.isnan(rows[n].images_per_s)]
    return max(rated, key=lambda row: row.images_per_s, default=None)


def _smaller(rows: Rows, names: Sequence[str]) -> Measures | None:
    found = [rows[n] for n in names if n in rows and not math.isnan(rows[n].peak_total_rss_mb)]
    return min(found, key=lambda row: row.peak_total_rss_mb, default=None)


def _rate(row: Measures) -> str:
    recycles = f", {row.recycles} recycles" if row.recycles else ""
    return f"{row.scenario} {row.images_per_s:.4g}/s{recycles}"


@dataclass(frozen=True)
class Goal:
    """``figure`` gives a round's figure and what it compared (``None``: a scenario it
    needs did not run or finish in that round)."""

    text: str
    workload: str
    figure: Callable[[Rows], tuple[float, str] | None]
    bound: float
    at_least: bool
    show: Callable[[float], str]
    same_text: bool = False
    """Also needs every run of the workload to return identical text."""

    def judge(self, rows: Sequence[Measures]) -> Verdict:
        mine = [row for row in rows if row.workload == self.workload]
        figures = []
        for round_index in sorted({row.round_index for row in mine}):
            finished = {
                row.scenario: row
                for row in mine
                if row.round_index == round_index and row.status == "ok"
            }
            figure = self.figure(finished)
            if figure is not None:
                figures.append(figure)
        if not figures:
            return Verdict(self.text, (), "-", "-", None)
        middle = statistics.median_low(value for value, _ in figures)
        detail = next(text for value, text in figures if value == middle)
        met = middle >= self.bound if self.at_least else middle <= self.bound
        if self.same_text:
            differing = sorted({row.scenario for row in mine if row.text_identical is False})
            if differing:
                met = False
                detail += "; text differs in " + ", ".join(differing)
            else:
                detail += "; identical text"
        return Verdict(
            self.text, tuple(self.show(value) for value, _ in figures), self.show(middle),
            detail, met,
        )  # fmt: skip


def _times(value: float) -> str:
    return f"{value:.2f}x"


def _share(value: float) -> str:
    return f"{value:.3f}"


def _percent(value: float) -> str:
    return f"{value:.1%}"


def _ratio_to_peer(ours: str, peers: Sequence[str]) -> Callable[[Rows], tuple[float, str] | None]:
    def figure(rows: Rows) -> tuple[float, str] | None:
        best = _faster(rows, peers)
        if ours not in rows or best is None:
            return None
        mine = rows[ours]
        return mine.images_per_s / best.images_per_s, f"{_rate(mine)} vs {_rate(best)}"

    return figure


def _cpu_limit(rows: Rows) -> tuple[float, str] | None:
    """The pool's images/s against its workers each running as fast as the best engine
    configuration in one process (``inprocess-tuned``)."""
    if not {"ocrpool-jobs", "inprocess-tuned"} <= rows.keys():
        return None
    ours, tuned = rows["ocrpool-jobs"], rows["inprocess-tuned"]
    limit = ours.workers / tuned.cpu_s_per_image
    return (
        ours.images_per_s / limit,
        f"limit {ours.workers} workers / {tuned.cpu_s_per_image:.3f} CPU-s = {limit:.3g}/s; "
        f"{_rate(ours)}",
    )


def _worker_cpu(rows: Rows) -> tuple[float, str] | None:
    if not {"ocrpool-steady", "inprocess-dotnet"} <= rows.keys():
        return None
    ours, plain = rows["ocrpool-steady"], rows["inprocess-dotnet"]
    return (
        ours.cpu_s_per_image / plain.cpu_s_per_image,
        f"{ours.cpu_s_per_image:.3f} vs {plain.cpu_s_per_image:.3f} CPU-s per image",
    )


def _p99(ours: str) -> Callable[[Rows], tuple[float, str] | None]:
    def figure(rows: Rows) -> tuple[float, str] | None:
        if not {ours, "ocrpool-steady"} <= rows.keys():
            return None
        mine, steady = rows[ours], rows["ocrpool-steady"]
        return (
            mine.p99_ms / steady.p99_ms,
            f"p99 {mine.p99_ms:.0f} vs {steady.p99_ms:.0f} ms ({mine.recycles} recycles)",
        )

    return figure


def _recycle_cost(rows: Rows) -> tuple[float, str] | None:
    if not {"ocrpool-jobs", "ocrpool-steady"} <= rows.keys():
        return None
    ours, steady = rows["ocrpool-jobs"], rows["ocrpool-steady"]
    return 1 - ours.images_per_s / steady.images_per_s, f"{_rate(ours)} vs {_rate(steady)}"


def _peak_rss(ours: str) -> Callable[[Rows], tuple[float, str] | None]:
    def figure(rows: Rows) -> tuple[float, str] | None:
        smaller = _smaller(rows, PEERS)
        if ours not in rows or smaller is None:
            return None
        mine = rows[ours]
        return (
            mine.peak_total_rss_mb / smaller.peak_total_rss_mb,
            f"{mine.peak_total_rss_mb:.0f} vs {smaller.peak_total_rss_mb:.0f} MB "
            f"({smaller.scenario}); time-averaged {mine.mean_total_rss_mb:.0f} vs "
            f"{smaller.mean_total_rss_mb:.0f} MB",
        )

    return figure


GOALS = (
    Goal(
        "real OCR: ocrpool-jobs ≥ 1.10x the faster of pebble and cf-ppe (same recognition "
        "options, .NET's own runtime settings), identical text",
        "aspose", _ratio_to_peer("ocrpool-jobs", PEERS), 1.10, True, _times, same_text=True,
    ),
    Goal(
        "real OCR: ocrpool-jobs ≥ 0.95 of the CPU limit (workers / inprocess-tuned CPU-s per "
        "image)",
        "aspose", _cpu_limit, 0.95, True, _share,
    ),
    Goal(
        "a worker's CPU per image (ocrpool-steady) ≤ 0.92x the same recognition options in a "
        "plain process with .NET's defaults (inprocess-dotnet)",
        "aspose", _worker_cpu, 0.92, False, _times,
    ),
    Goal(
        "real OCR: p99 while recycling (ocrpool-jobs) ≤ 1.2x steady (ocrpool-steady)",
        "aspose", _p99("ocrpool-jobs"), 1.2, False, _times,
    ),
    Goal(
        "real OCR: recycling (ocrpool-jobs against ocrpool-steady) costs ≤ 2% of images/s",
        "aspose", _recycle_cost, 0.02, False, _percent,
    ),
    Goal(
        "no-op jobs without recycling: ocrpool-steady ≥ 0.9x the faster of pebble-steady and "
        "cf-ppe-steady",
        "fake-noop", _ratio_to_peer("ocrpool-steady", STEADY_PEERS), 0.9, True, _times,
    ),
    Goal(
        "no-op jobs recycling every 50: ocrpool-jobs ≥ 1.5x the faster of pebble and cf-ppe",
        "fake-noop", _ratio_to_peer("ocrpool-jobs", PEERS), 1.5, True, _times,
    ),
    Goal(
        "real OCR: peak tree RSS of ocrpool-jobs ≤ 1.05x the smaller peer's, equal workers",
        "aspose", _peak_rss("ocrpool-jobs"), 1.05, False, _times,
    ),
    Goal(
        "the trade-off, a spare warmed ahead of each recycle (spares=1, ocrpool-spare): "
        "peak tree RSS ≤ 1.05x the smaller peer's",
        "aspose", _peak_rss("ocrpool-spare"), 1.05, False, _times,
    ),
    Goal(
        "the trade-off, a spare warmed ahead of each recycle (spares=1, ocrpool-spare): "
        "p99 while recycling ≤ 1.2x steady",
        "aspose", _p99("ocrpool-spare"), 1.2, False, _times,
    ),
    Goal(
        "real OCR: the Ray backend (ray-jobs) ≥ 0.95x the local pool (ocrpool-jobs)",
        "aspose", _ratio_to_peer("ray-jobs", ("ocrpool-jobs",)), 0.95, True, _times,
    ),
)  # fmt: skip


def judge(rows: Sequence[Measures], goals: Sequence[Goal] = GOALS) -> list[Verdict]:
    return [goal.judge(rows) for goal in goals]
