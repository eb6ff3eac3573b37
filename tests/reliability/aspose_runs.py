"""A real engine under load: a soak over the shipped scans across many recycles, with
every text compared against the same engine called directly (in a throwaway child, so
this process never loads the engine), and a fuzz of damaged scans.

Both run the pool with a real engine, ``aspose`` unless told ``engine="tesseract"``;
they are the slow part of the suite.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ocrpool import OcrPool, OcrPoolError, OcrResult
from ocrpool.engines.aspose.child import run_in_child
from tests.support.served import pool_workers

from .invariants import no_orphans
from .mutations import SCANS, mutants

ASPOSE_SETTINGS: dict[str, Any] = dict(
    engine="aspose", workers=2, spares=1, max_jobs_per_worker=25, job_timeout=120, retries=1
)
"""Recycling every 25 jobs, so a soak of 500 images sees about 20 recycles."""
TESSERACT_SETTINGS: dict[str, Any] = {**ASPOSE_SETTINGS, "engine": "tesseract"}
"""The same pool with Tesseract."""
SETTINGS = {"aspose": ASPOSE_SETTINGS, "tesseract": TESSERACT_SETTINGS}
FUZZ_SETTINGS: dict[str, Any] = dict(retries=0, job_timeout=30)
"""A damaged scan that kills its worker is not tried again; one that hangs the engine
costs 30 s, not the default 120 (the shipped scans take 1 to 5 s each here)."""


def direct_texts(paths: list[str], engine_name: str = "aspose") -> list[list[str]]:
    """Each file's page texts from one engine in this process, with the pool's default
    options: runs in a throwaway child (``run_in_child``), never in the supervisor."""
    from ocrpool.engines import create_engine

    engine = create_engine(engine_name)
    engine.start()
    try:
        return [[page.text for page in engine.recognize(path).pages] for path in paths]
    finally:
        engine.close()


class RssTimeline:
    """Total RSS (this process and its workers) and the largest worker, twice a second."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.rows: list[tuple[float, float, float]] = []
        self.worker_peaks: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-timeline", daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> RssTimeline:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._done.wait(self.interval_s):
            total = me.memory_info().rss / 2**20
            largest = 0.0
            for worker in pool_workers(me):
                try:
                    rss = worker.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                total += rss
                largest = max(largest, rss)
                self.worker_peaks[worker.pid] = max(self.worker_peaks.get(worker.pid, 0.0), rss)
            self.rows.append((round(time.monotonic() - self._started, 1), total, largest))


@dataclass
class AsposeSoak:
    images: int
    distinct: int
    elapsed_s: float
    ok: int
    same_text: int
    different: list[str]
    errors: Counter[str]
    exits: dict[str, int]
    worker_rss_after_job_max_mb: float
    worker_rss_sampled_max_mb: float
    soft_limit_mb: float | None
    hard_limit_mb: float | None
    timeline: list[tuple[float, float, float]] = field(repr=False)
    problems: list[str]

    def summary(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "distinct_images": self.distinct,
            "elapsed_s": round(self.elapsed_s, 1),
            "images_per_s": round(self.images / self.elapsed_s, 2),
            "ok": self.ok,
            "text_same_as_direct_engine": self.same_text,
            "text_different": self.different,
            "errors": dict(self.errors),
            "worker_exits": self.exits,
            "recycles": sum(n for cause, n in self.exits.items() if cause != "shutdown"),
            "worker_rss_after_job_max_mb": round(self.worker_rss_after_job_max_mb, 1),
            "worker_rss_sampled_max_mb": round(self.worker_rss_sampled_max_mb, 1),
            "soft_limit_mb": self.soft_limit_mb,
            "hard_limit_mb": self.hard_limit_mb,
            "total_rss_max_mb": round(max((t for _, t, _ in self.timeline), default=0.0), 1),
            "problems": self.problems,
        }


def aspose_soak(
    count: int, settings: dict[str, Any] | None = None, engine: str = "aspose"
) -> AsposeSoak:
    """OCR ``count`` images (the shipped scans, cycled) with ``engine`` and compare every
    text with the engine's own answer for the same file."""
    distinct = [str(path) for path in SCANS]
    direct = run_in_child(direct_texts, distinct, engine, timeout=600)
    expected = dict(zip(distinct, direct, strict=True))
    paths = [distinct[n % len(distinct)] for n in range(count)]
    pool = OcrPool(**{**SETTINGS[engine], **(settings or {})})
    with RssTimeline() as timeline:
        started = time.monotonic()
        with pool:
            results = list(pool.imap(paths))  # in input order
        elapsed = time.monotonic() - started
    different = [
        f"{path}: {[p.text for p in result.pages]!r} != {expected[path]!r}"
        for path, result in zip(paths, results, strict=True)
        if result.ok and [p.text for p in result.pages] != expected[path]
    ]
    ok = sum(r.ok for r in results)
    config = pool.config
    return AsposeSoak(
        images=count,
        distinct=len(distinct),
        elapsed_s=elapsed,
        ok=ok,
        same_text=ok - len(different),
        different=different[:20],
        errors=Counter(type(r.error).__name__ for r in results if r.error is not None),
        exits=dict(pool.stats().exits),
        worker_rss_after_job_max_mb=max((r.rss_mb or 0.0) for r in results),
        worker_rss_sampled_max_mb=max(timeline.worker_peaks.values(), default=0.0),
        soft_limit_mb=config.max_rss_mb,
        hard_limit_mb=config.effective_hard_rss_mb,
        timeline=timeline.rows,
        problems=no_orphans() + ([] if ok == count else [f"{count - ok} images failed"]),
    )


@dataclass
class Fuzz:
    inputs: int
    outcomes: Counter[str]
    """``ok`` or the error type."""
    exits: dict[str, int]
    slowest_s: float
    problems: list[str]

    def summary(self) -> dict[str, Any]:
        return {
            "mutated_inputs": self.inputs,
            "outcomes": dict(self.outcomes),
            "worker_exits": self.exits,
            "slowest_job_s": round(self.slowest_s, 1),
            "problems": self.problems,
        }


def fuzz(
    folder: Path,
    count: int,
    seed: int,
    settings: dict[str, Any] | None = None,
    engine: str = "aspose",
) -> Fuzz:
    """Damaged scans through the pool: each must end ok or with a typed error within the
    job timeout, and the pool must still read a good scan afterwards."""
    inputs = [str(path) for path in mutants(folder, count, seed)]
    pool = OcrPool(**{**SETTINGS[engine], **FUZZ_SETTINGS, **(settings or {})})
    problems = []
    with pool:
        results: list[OcrResult] = list(pool.imap(inputs, ordered=False))
        for result in results:
            if result.error is not None and not isinstance(result.error, OcrPoolError):
                problems.append(f"{result.input}: untyped {result.error!r}")
        after = pool.recognize(str(SCANS[0]))
        if not after.text.startswith("This is a lot of 12 point text"):
            problems.append(f"the pool no longer reads a good scan: {after.text[:60]!r}")
    slowest = max((sum(a.elapsed_s for a in r.attempts) for r in results), default=0.0)
    timeout = pool.config.job_timeout
    if timeout is not None and slowest > timeout + pool.config.kill_grace + 5:
        problems.append(f"a job ran {slowest:.0f}s, past the {timeout}s timeout")
    if len(results) != count:
        problems.append(f"{count} inputs, {len(results)} results")
    return Fuzz(
        inputs=count,
        outcomes=Counter("ok" if r.ok else type(r.error).__name__ for r in results),
        exits=dict(pool.stats().exits),
        slowest_s=slowest,
        problems=problems + no_orphans(),
    )
