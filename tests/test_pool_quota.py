"""``max_jobs_per_worker`` and ``max_rss_mb`` are ceilings: no worker starts a job past them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fakes import fake_pool, make_inputs

from ocrpool import ExitCause, WorkerExit


@pytest.mark.slow
def test_a_quota_of_one_runs_every_job_in_a_fresh_process(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"p{i}.png" for i in range(40)])
    exits: list[WorkerExit] = []
    with fake_pool(workers=2, spares=1, max_jobs_per_worker=1, on_worker_exit=exits.append) as pool:
        results = list(pool.imap(paths, ordered=False))
    assert all(r.ok for r in results)
    assert len({r.worker_pid for r in results}) == 40
    assert Counter(e.cause for e in exits)[ExitCause.MAX_JOBS] == 40
    assert all(e.jobs <= 1 for e in exits)


@pytest.mark.slow
def test_a_quota_of_five_over_a_hundred_jobs_needs_twenty_workers(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"p{i}.png" for i in range(100)])
    exits: list[WorkerExit] = []
    with fake_pool(workers=2, spares=1, max_jobs_per_worker=5, on_worker_exit=exits.append) as pool:
        results = list(pool.imap(paths, ordered=False))
    assert all(r.ok for r in results)
    per_worker = Counter(r.worker_pid for r in results)
    assert len(per_worker) >= 20
    assert max(per_worker.values()) <= 5
    assert sum(e.jobs for e in exits) == 100


@pytest.mark.slow
def test_no_job_starts_on_a_worker_past_its_soft_limit(tmp_path: Path) -> None:
    """40 MB leaked per instant job against warm RSS + 100 MB: a worker is past the limit
    after its third job, and then declines even the job already waiting in its pipe."""
    paths = make_inputs(tmp_path, [f"leak-{i}.png" for i in range(60)])
    exits: list[WorkerExit] = []
    with fake_pool(
        workers=2,
        spares=1,
        max_jobs_per_worker=None,
        max_rss_mb=100,
        hard_rss_mb=10_000,
        rss_relative=True,
        engine_options={"leak_mb": 40},
        on_worker_exit=exits.append,
    ) as pool:
        results = list(pool.imap(paths, ordered=False))
    assert all(r.ok for r in results)
    assert Counter(r.input for r in results) == Counter(paths)
    per_worker = Counter(r.worker_pid for r in results)
    assert max(per_worker.values()) == 3
    soft = [e for e in exits if e.cause is ExitCause.SOFT_RSS]
    assert len(soft) >= 15
    assert all(e.jobs == 3 for e in soft)
