"""Recycling by job count and by memory: no job lost, failed or served twice."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from fakes import fake_pool, make_inputs

from ocrpool import ExitCause, PoolStats, WorkerExit, WorkerState


@pytest.mark.slow
def test_recycles_by_job_count_without_losing_a_job(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"page-{i}.png" for i in range(60)])
    exits: list[WorkerExit] = []
    with fake_pool(
        workers=2,
        spares=1,
        max_jobs_per_worker=5,
        engine_options={"delay": 0.01},
        on_worker_exit=exits.append,
    ) as pool:
        results = list(pool.imap(paths, ordered=False))
    assert all(r.ok for r in results)
    assert Counter(r.input for r in results) == Counter(paths)
    assert [r.text for r in sorted(results, key=lambda r: r.input)] == sorted(
        Path(p).stem for p in paths
    )
    # both first workers reach their quota even if no replacement is warm in time
    assert sum(e.cause is ExitCause.MAX_JOBS for e in exits) >= 2
    assert sum(e.jobs for e in exits) == 60
    assert all(e.jobs >= 1 for e in exits if e.cause is ExitCause.MAX_JOBS)
    assert {e.cause for e in exits} <= {ExitCause.MAX_JOBS, ExitCause.SHUTDOWN}


@pytest.mark.slow
def test_recycles_on_soft_rss_limit_after_the_job(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"leak-{i}.png" for i in range(24)])
    exits: list[WorkerExit] = []
    with fake_pool(
        workers=1,
        spares=1,
        max_jobs_per_worker=None,
        max_rss_mb=40,
        rss_relative=True,
        engine_options={"leak_mb": 15, "delay": 0.05},
        on_worker_exit=exits.append,
    ) as pool:
        results = list(pool.imap(paths))
    assert all(r.ok for r in results)
    soft = [e for e in exits if e.cause is ExitCause.SOFT_RSS]
    assert soft
    # 15 MB leaked a job against a limit of warm-up RSS + 40 MB: due after its third job,
    # and a due worker leaves as such, even when the pool closes before it is replaced
    assert all(e.jobs >= 3 for e in soft)
    assert all(e.cause is ExitCause.SOFT_RSS for e in exits if e.jobs >= 3)
    assert sum(e.jobs for e in exits) == 24


@pytest.mark.slow
def test_a_warm_spare_takes_a_retiring_workers_slot_at_once(tmp_path: Path) -> None:
    """Make before break: whenever a slot is empty, no warm spare is left unused."""
    paths = make_inputs(tmp_path, [f"p{i}.png" for i in range(100)])
    unused_spares: list[PoolStats] = []
    stop = threading.Event()

    with fake_pool(
        workers=2, spares=1, max_jobs_per_worker=10, engine_options={"delay": 0.03}
    ) as pool:

        def watch() -> None:
            while not stop.is_set():
                stats = pool.stats()
                spare = any(w.state is WorkerState.SPARE for w in stats.workers)
                if stats.ready < 2 and spare:
                    unused_spares.append(stats)

        watcher = threading.Thread(target=watch)
        watcher.start()
        results = list(pool.imap(paths, ordered=False))
        stop.set()
        watcher.join()
    assert all(r.ok for r in results)
    assert pool.stats().recycles >= 8
    assert unused_spares == []
