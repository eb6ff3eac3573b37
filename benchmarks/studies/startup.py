"""Worker start cost: how fast a pool can run jobs when every job needs a fresh worker.

``max_jobs_per_worker=1`` with instant fake jobs makes every job wait for a worker start,
so jobs/s is the start rate and its inverse the cost of one start (interpreter or fork,
imports, engine start). Start methods are compared side by side in alternating rounds.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ocrpool import OcrPool

METHODS = ("spawn", "forkserver")


@dataclass(frozen=True)
class StartCost:
    method: str
    round: int
    jobs: int
    seconds: float

    @property
    def ms_per_job(self) -> float:
        return 1000 * self.seconds / self.jobs


def measure(method: str, jobs: int, round_index: int, workers: int = 2) -> StartCost:
    with tempfile.TemporaryDirectory() as folder:
        image = Path(folder) / "noop.png"
        image.write_bytes(b"fake image")
        with OcrPool(
            workers,
            spares=workers,
            max_jobs_per_worker=1,
            engine="fake",
            start_method=method,
            warm_nice=0,
        ) as pool:
            started = time.monotonic()
            results = list(pool.imap([str(image)] * jobs, ordered=False))
            elapsed = time.monotonic() - started
    assert all(result.ok for result in results)
    return StartCost(method, round_index, jobs, elapsed)


def run(jobs: int, rounds: int) -> list[StartCost]:
    costs = []
    for index in range(rounds):
        order = METHODS if index % 2 == 0 else METHODS[::-1]
        costs += [measure(method, jobs, index) for method in order]
    return costs


def report(costs: list[StartCost]) -> str:
    lines = [
        "| start method | round | jobs | s | ms per job (each in a fresh worker) |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c.method} | {c.round} | {c.jobs} | {c.seconds:.2f} | {c.ms_per_job:.1f} |"
        for c in costs
    ]
    return "\n".join(lines)
