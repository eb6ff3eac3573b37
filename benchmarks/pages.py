"""Pages, not files: ``python -m benchmarks pages``.

A corpus of single pages with one long document built from the shipped scans (their
pages cycled into one multi-page TIFF), the document submitted last, as a batch that ends
on it would. Each round runs, in alternating order: ocrpool splitting the document into
page jobs, ocrpool running it as one job, and pebble and ``ProcessPoolExecutor`` running
one document per task (one engine per worker, as in the other benchmarks). Measured per
scenario: the makespan, p50/p99 of each input's time to its result, and whether every
page's text is the text of the split run (which recognised each page alone). The cost of
splitting on single pages is the time counting an input's pages takes (a page count of 1:
never split; a local pool's worker counts a path's, the front counts bytes), against the
engine's time per page.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pebble

from benchmarks.comparisons.pools import recognize_pages, start_engine
from ocrpool import OcrPool, OcrResult
from ocrpool.pool.documents import PageJobs, plan

REPO = Path(__file__).resolve().parent.parent
SCANS = (
    REPO / "examples" / "images" / "phototest.tif",
    REPO / "examples" / "images" / "eurotext.tif",
    REPO / "examples" / "images" / "skimage-page.png",
    REPO / "examples" / "images" / "multipage-3.tif",
    REPO / "tests" / "data" / "HelloGoogle.tif",
    REPO / "tests" / "data" / "phototest-rotated-180.png",
)
SCENARIOS = ("split", "unsplit", "pebble", "cf-ppe")


@dataclass(frozen=True)
class Run:
    scenario: str
    round: int
    makespan_s: float
    latencies_s: tuple[float, ...]
    """Each input's time from the start to its result, in submission order."""
    pages: tuple[tuple[str, ...], ...]
    """Each input's pages' text (empty for an input that failed)."""
    failed: int
    engine_s: float | None = None
    """Split runs: the page jobs' time in the engine, summed."""
    workers_used: int | None = None

    @property
    def p50_s(self) -> float:
        return statistics.median(self.latencies_s)

    @property
    def p99_s(self) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def build_corpus(folder: Path, pages: int) -> list[str]:
    """The single pages (each shipped scan's first page as a file of its own) and, last,
    a ``pages``-page TIFF cycling through every page of every scan."""
    from PIL import Image, ImageSequence

    folder.mkdir(parents=True, exist_ok=True)
    frames: list[Image.Image] = []
    singles = []
    for number, scan in enumerate(SCANS):
        with Image.open(scan) as image:
            own = [frame.convert("L") for frame in ImageSequence.Iterator(image)]
        frames += own
        single = folder / f"single-{number}-{scan.stem}.png"
        own[0].save(single)
        singles.append(str(single))
    document = folder / f"document-{pages}.tif"
    cycle = [frame.copy() for _, frame in zip(range(pages), itertools.cycle(frames))]
    cycle[0].save(document, save_all=True, append_images=cycle[1:], compression="tiff_lzw")
    with Image.open(document) as check:
        count = getattr(check, "n_frames", 1)
        assert count == pages, f"{document}: {count} pages, not {pages}"
    return [*singles, str(document)]


def measure(
    scenario: str, inputs: list[str], engine: str, options: dict[str, Any], workers: int, rnd: int
) -> Run:
    with _pool(scenario, engine, options, workers) as submit:
        done: list[float] = [0.0] * len(inputs)
        started = time.monotonic()
        futures = []
        for index, source in enumerate(inputs):
            future = submit(source)
            future.add_done_callback(_stamp(done, index))
            futures.append(future)
        outcomes = [_pages(future) for future in futures]
        finished = max(done)
    results = [result for _, result in outcomes if result is not None]
    split = scenario == "split"
    pids = {a.worker_pid for r in results for a in r.attempts}
    return Run(
        scenario,
        rnd,
        finished - started,
        tuple(t - started for t in done),
        tuple(pages for pages, _ in outcomes),
        sum(1 for pages, _ in outcomes if not pages),
        sum(a.elapsed_s for r in results for a in r.attempts) if split else None,
        len(pids) if results else None,
    )


def _stamp(done: list[float], index: int) -> Callable[[Future[Any]], None]:
    def stamp(_: Future[Any]) -> None:
        done[index] = time.monotonic()

    return stamp


def _pages(future: Future[Any]) -> tuple[tuple[str, ...], OcrResult | None]:
    try:
        value = future.result()
    except Exception:
        return (), None
    if isinstance(value, OcrResult):
        return (tuple(page.text for page in value.pages) if value.ok else ()), value
    return tuple(value), None


@contextmanager
def _pool(
    scenario: str, engine: str, options: dict[str, Any], workers: int
) -> Iterator[Callable[[str], Future[Any]]]:
    if scenario in ("split", "unsplit"):
        with OcrPool(
            workers,
            spares=0,
            engine=engine,
            engine_options=options,
            split_pages=scenario == "split",
        ) as pool:
            yield pool.submit_result
        return
    spawn = multiprocessing.get_context("spawn")
    if scenario == "pebble":
        peer = pebble.ProcessPool(
            max_workers=workers, initializer=start_engine, initargs=(engine, options), context=spawn
        )
        _warm(lambda: peer.schedule(recognize_pages, args=(SCANS[0].as_posix(),)), workers)
        try:
            yield lambda source: peer.schedule(recognize_pages, args=(source,))
        finally:
            peer.close()  # type: ignore[no-untyped-call]
            peer.join()
        return
    executor = ProcessPoolExecutor(
        max_workers=workers, initializer=start_engine, initargs=(engine, options), mp_context=spawn
    )
    _warm(lambda: executor.submit(recognize_pages, SCANS[0].as_posix()), workers)
    try:
        yield lambda source: executor.submit(recognize_pages, source)
    finally:
        executor.shutdown(wait=True)


def _warm(call: Callable[[], Future[Any]], workers: int) -> None:
    """Start every peer worker's engine before the clock starts, as ocrpool's are."""
    for future in [call() for _ in range(2 * workers)]:
        future.result()


def split_cost(inputs: list[str], repeats: int = 200) -> float:
    """Seconds counting one single-page input's pages takes (and not splitting)."""
    jobs = PageJobs(pages_per_job=1, min_pages=4)
    started = time.perf_counter()
    for _ in range(repeats):
        for source in inputs:
            assert plan(source, jobs) is None
    return (time.perf_counter() - started) / (repeats * len(inputs))


def run(
    pages: int, rounds: int, engine: str, options: dict[str, Any], workers: int
) -> tuple[list[Run], float]:
    with tempfile.TemporaryDirectory(prefix="ocrpool-pages-") as folder:
        inputs = build_corpus(Path(folder), pages)
        runs = []
        for rnd in range(rounds):
            order = SCENARIOS if rnd % 2 == 0 else SCENARIOS[::-1]
            for scenario in order:
                runs.append(measure(scenario, inputs, engine, options, workers, rnd))
                print(_row(runs[-1]), flush=True)
        return runs, split_cost(inputs[:-1])


def report(runs: list[Run], per_input_split_s: float, workers: int, command: str) -> str:
    reference = {r.round: r.pages for r in runs if r.scenario == "split"}
    lines = [
        f"`{command}`",
        "",
        "| scenario | round | makespan s | p50 s | p99 s | failed | pages as split |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(r, r.pages == reference[r.round]) for r in runs]
    split = [r for r in runs if r.scenario == "split"]
    unsplit = [r for r in runs if r.scenario == "unsplit"]
    best = statistics.median
    speedup = best([u.makespan_s for u in unsplit]) / best([s.makespan_s for s in split])
    engine_s = best([s.engine_s or 0.0 for s in split])
    bound = engine_s / workers
    singles = [r for r in split if r.latencies_s]
    engine_per_page = engine_s / max(1, sum(len(p) for p in singles[0].pages))
    lines += [
        "",
        f"- split vs unsplit makespan (medians): {speedup:.2f}x sooner (goal >= 1.5x)",
        f"- split makespan vs engine time / workers ({engine_s:.1f} s / {workers}): "
        f"{best([s.makespan_s for s in split]) / bound:.2f}x (goal <= 1.1x)",
        f"- counting pages of a single-page input: {1e6 * per_input_split_s:.0f} us, "
        f"{100 * per_input_split_s / engine_per_page:.3f}% of the engine's "
        f"{engine_per_page:.2f} s per page (goal <= 3%); no single page was split",
        f"- workers used by split runs: {sorted({r.workers_used or 0 for r in split})}",
    ]
    return "\n".join(lines)


def _row(run: Run, same: bool | None = None) -> str:
    alike = "-" if same is None else ("identical" if same else "DIFFERENT")
    return (
        f"| {run.scenario} | {run.round} | {run.makespan_s:.2f} | {run.p50_s:.2f} | "
        f"{run.p99_s:.2f} | {run.failed} | {alike} |"
    )
