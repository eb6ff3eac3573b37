"""The benchmark targets (issues 6, 9, 14 and 11 for the Ray backend), judged from one run's
measures (``None``: not measured this time, or a figure to read rather than a target)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.metrics import Measures

REAL_OCR_SPEEDUP = 4.0
CPU_LIMIT_SHARE = 0.95
RECYCLE_COST = 0.03
P99_RECYCLE_FACTOR = 1.2
RECYCLING_PEER_FACTOR = 1.5
"""No-op jobs recycling every N: ocrpool against the faster peer, with equal recycle counts."""
STEADY_PEER_FACTOR = 0.9
"""No-op jobs without recycling: ocrpool against the faster peer (one lease round trip
per job is the price of knowing which job each worker holds)."""
BOUNDED_SLOPE_SHARE = 0.1
"""Total RSS counts as bounded when it grows by under a tenth of what the leak grows."""
GROWING_SLOPE_MB = 0.1
"""A leak grows by at least this much per job; below it there is nothing to bound."""
RAY_THROUGHPUT_SHARE = 0.95
RAY_SCENARIOS = ("ray-jobs", "ray-ship-bytes")
REAL_OCR_PEER_FACTOR = 1.05
"""Real OCR: ocrpool against the faster peer running the same recognition options."""


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None


def _rate(row: Measures) -> str:
    recycles = ""
    if row.recycles:
        recycles = f" ({row.recycles} recycle{'s' if row.recycles > 1 else ''})"
    return f"{row.scenario} {row.images_per_s:.4g}/s{recycles}"


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 100 else f"{value:.3g} ms"


def _faster(rows: Mapping[str, Measures], names: tuple[str, ...]) -> Measures | None:
    present = [rows[name] for name in names if name in rows]
    rated = [row for row in present if not math.isnan(row.images_per_s)]
    return max(rated, key=lambda row: row.images_per_s, default=None)


def _beats_peers(
    rows: Mapping[str, Measures], ours: str, peers: tuple[str, str], factor: float, engine: str
) -> Verdict:
    target = f"no-op jobs: {ours} jobs/s ≥ {factor:g}x the faster of {' and '.join(peers)}"
    best = _faster(rows, peers)
    if engine != "fake":
        return Verdict(target, "not run (pool overhead: needs the fake engine)", None)
    if ours not in rows or best is None:
        return Verdict(target, "not run", None)
    row = rows[ours]
    ratio = row.images_per_s / best.images_per_s
    measured = f"{_rate(row)} vs {_rate(best)} ({ratio:.2f}x)"
    return Verdict(target, measured, ratio >= factor)


def _speedup(rows: Mapping[str, Measures], engine: str) -> Verdict:
    target = f"real OCR: ocrpool-jobs ≥ {REAL_OCR_SPEEDUP:g}x inprocess-reuse images/s"
    if engine == "fake" or not {"ocrpool-jobs", "inprocess-reuse"} <= rows.keys():
        return Verdict(target, "not run (needs the aspose engine)", None)
    ours, base = rows["ocrpool-jobs"], rows["inprocess-reuse"]
    ratio = ours.images_per_s / base.images_per_s
    return Verdict(
        target, f"{_rate(ours)} vs {_rate(base)} ({ratio:.2f}x)", ratio >= REAL_OCR_SPEEDUP
    )


def _real_ocr_peers(rows: Mapping[str, Measures], engine: str, differing: Sequence[str]) -> Verdict:
    peers = ("pebble", "cf-ppe")
    target = (
        f"real OCR: ocrpool-jobs ≥ {REAL_OCR_PEER_FACTOR:g}x the faster of "
        f"{' and '.join(peers)} (same recognition options), with identical text"
    )
    best = _faster(rows, peers)
    if engine == "fake" or "ocrpool-jobs" not in rows or best is None:
        return Verdict(target, "not run (needs the aspose engine)", None)
    ours = rows["ocrpool-jobs"]
    ratio = ours.images_per_s / best.images_per_s
    text = (
        "text differs between scenarios on " + ", ".join(differing)
        if differing
        else "identical text for every input"
    )
    measured = f"{_rate(ours)} vs {_rate(best)} ({ratio:.2f}x); {text}"
    return Verdict(target, measured, ratio >= REAL_OCR_PEER_FACTOR and not differing)


def _cpu_limit(rows: Mapping[str, Measures], engine: str, cores: int) -> Verdict:
    target = f"real OCR: ocrpool-jobs ≥ {CPU_LIMIT_SHARE:g} of the CPU limit (from inprocess-tuned)"
    if engine == "fake" or not {"ocrpool-jobs", "inprocess-tuned"} <= rows.keys():
        return Verdict(target, "not run (needs the aspose engine)", None)
    ours, tuned = rows["ocrpool-jobs"], rows["inprocess-tuned"]
    limit = cores / tuned.cpu_s_per_image
    share = ours.images_per_s / limit
    measured = (
        f"CPU limit {cores} cores / {tuned.cpu_s_per_image:.3g} CPU-s per image = "
        f"{limit:.3g}/s; {_rate(ours)} = {share:.3f} of it"
    )
    return Verdict(target, measured, share >= CPU_LIMIT_SHARE)


def _recycle_cost(rows: Mapping[str, Measures]) -> Verdict:
    target = f"recycling costs ≤ {RECYCLE_COST:.0%} throughput (ocrpool-jobs vs ocrpool-steady)"
    if not {"ocrpool-jobs", "ocrpool-steady"} <= rows.keys():
        return Verdict(target, "not run", None)
    ours, steady = rows["ocrpool-jobs"], rows["ocrpool-steady"]
    cost = 1.0 - ours.images_per_s / steady.images_per_s
    measured = f"{_rate(ours)} vs {_rate(steady)}: costs {cost:.1%}"
    return Verdict(target, measured, cost <= RECYCLE_COST)


def _p99(rows: Mapping[str, Measures]) -> Verdict:
    target = f"p99 recycling ≤ {P99_RECYCLE_FACTOR:g}x p99 without (ocrpool-jobs vs ocrpool-steady)"
    if not {"ocrpool-jobs", "ocrpool-steady"} <= rows.keys():
        return Verdict(target, "not run", None)
    ours, steady = rows["ocrpool-jobs"], rows["ocrpool-steady"]
    ratio = ours.p99_ms / steady.p99_ms
    peers = "; ".join(
        f"{name} p99 {_ms(rows[name].p99_ms)}" for name in ("pebble", "cf-ppe") if name in rows
    )
    measured = (
        f"p99 {_ms(ours.p99_ms)} vs {_ms(steady.p99_ms)} ({ratio:.2f}x); "
        f"during recycles {_ms(ours.p99_recycle_ms)}" + (f"; {peers}" if peers else "")
    )
    return Verdict(target, measured, ratio <= P99_RECYCLE_FACTOR)


def _bounded(rows: Mapping[str, Measures]) -> Verdict:
    target = "total RSS bounded while inprocess-leak grows (ocrpool-jobs vs inprocess-leak)"
    if not {"ocrpool-jobs", "inprocess-leak"} <= rows.keys():
        return Verdict(target, "not run", None)
    ours, leak = rows["ocrpool-jobs"], rows["inprocess-leak"]
    measured = (
        f"{ours.rss_slope_mb_per_job:.3g} vs {leak.rss_slope_mb_per_job:.3g} MB/job; peaks "
        f"{ours.peak_total_rss_mb:.0f} vs {leak.peak_total_rss_mb:.0f} MB"
    )
    if not leak.rss_slope_mb_per_job >= GROWING_SLOPE_MB:
        return Verdict(target, measured + " (the leak did not grow: nothing to bound)", None)
    met = ours.rss_slope_mb_per_job < BOUNDED_SLOPE_SHARE * leak.rss_slope_mb_per_job
    return Verdict(target, measured, met)


def _ray_throughput(rows: Mapping[str, Measures], engine: str, name: str) -> Verdict:
    target = f"real OCR: {name} ≥ {RAY_THROUGHPUT_SHARE:g}x ocrpool-jobs images/s"
    if "ocrpool-jobs" not in rows:
        return Verdict(target, "not run (needs ocrpool-jobs)", None)
    ours, local = rows[name], rows["ocrpool-jobs"]
    ratio = ours.images_per_s / local.images_per_s
    measured = f"{_rate(ours)} vs {_rate(local)} ({ratio:.2f}x)"
    if engine == "fake":
        return Verdict(target, measured + " (no-op jobs: the cost of a call, not of OCR)", None)
    return Verdict(target, measured, ratio >= RAY_THROUGHPUT_SHARE)


def _ray_overhead(rows: Mapping[str, Measures], name: str) -> Verdict:
    """What a job costs more through Ray: CPU (the driver, Ray's servers and the actor) and
    latency, and what Ray's own processes hold."""
    target = f"{name}: overhead per job and Ray's memory (vs ocrpool-jobs)"
    ours = rows[name]
    ray_rss = f"Ray's own processes peaked at {ours.peak_ray_rss_mb:.0f} MB"
    if "ocrpool-jobs" not in rows:
        return Verdict(target, ray_rss, None)
    local = rows["ocrpool-jobs"]
    cpu_ms = (ours.cpu_s_per_image - local.cpu_s_per_image) * 1000
    measured = (
        f"CPU {cpu_ms:+.1f} ms/job ({ours.cpu_s_per_image:.3f} vs {local.cpu_s_per_image:.3f} "
        f"s); p50 latency {ours.p50_ms - local.p50_ms:+.1f} ms ({_ms(ours.p50_ms)} vs "
        f"{_ms(local.p50_ms)}); peak total RSS {ours.peak_total_rss_mb:.0f} vs "
        f"{local.peak_total_rss_mb:.0f} MB; {ray_rss}"
    )
    return Verdict(target, measured, None)


def judge(
    rows: Mapping[str, Measures], engine: str, cores: int, differing: Sequence[str]
) -> list[Verdict]:
    """Every target, in the issues' order, then the Ray backend's if it ran. ``differing``
    are the inputs for which the scenarios recognising with the same options returned
    different text."""
    ray = [
        verdict
        for name in RAY_SCENARIOS
        if name in rows
        for verdict in (_ray_throughput(rows, engine, name), _ray_overhead(rows, name))
    ]
    return [
        _beats_peers(
            rows,
            "ocrpool-steady",
            ("pebble-steady", "cf-ppe-steady"),
            STEADY_PEER_FACTOR,
            engine,
        ),
        _beats_peers(rows, "ocrpool-jobs", ("pebble", "cf-ppe"), RECYCLING_PEER_FACTOR, engine),
        _speedup(rows, engine),
        _real_ocr_peers(rows, engine, differing),
        _cpu_limit(rows, engine, cores),
        _recycle_cost(rows),
        _p99(rows),
        _bounded(rows),
        *ray,
    ]
