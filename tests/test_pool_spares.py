"""Spares just in time: a replacement warms only when a worker nears its end."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes import fake_pool, make_inputs

from ocrpool import PoolConfig, WorkerExit, WorkerState
from ocrpool.pool import config as config_module, policies


def worker(**facts: Any) -> Any:
    """A worker as the spare policy sees it: an active one, 10 jobs done in 1 s each."""
    defaults = dict(
        active=True, due=None, job_s=1.0, quota=None, jobs=10, rss_mb=500.0, warm_rss_mb=500.0
    )
    return SimpleNamespace(**{**defaults, **facts})


@pytest.mark.parametrize(
    ("facts", "warmup_s", "nearing"),
    [
        ({}, 2.0, False),  # no quota, no growth: never
        ({"quota": 50}, 2.0, False),  # 40 jobs left, a warm-up is 2 jobs
        ({"quota": 13}, 2.0, True),  # 3 jobs left: 2 of warm-up + 1
        ({"quota": 14}, 2.0, False),
        ({"quota": 14, "job_s": 0.5}, 2.0, True),  # shorter jobs: more of them ahead
        ({"quota": 20, "job_s": None}, 2.0, False),  # no job timed yet: a warm-up each
        ({"due": "max_jobs"}, 2.0, True),  # due already
        ({"active": False, "quota": 11}, 2.0, False),  # a spare or a retiring worker
        ({"rss_mb": 900.0}, 2.0, False),  # 40 MB a job: 1,020 MB in 3 jobs, limit 1,024
        ({"rss_mb": 910.0}, 2.0, True),  # 41 MB a job: 1,033 MB in 3 jobs
        ({"rss_mb": 400.0}, 2.0, False),  # it shrank
        ({"rss_mb": 910.0, "jobs": 0}, 2.0, False),  # nothing to measure growth by
        ({"rss_mb": 800.0, "jobs": 2}, 2.0, False),  # 150 MB a job, but 2 jobs: too few to tell
        ({"rss_mb": 800.0, "jobs": 3}, 2.0, True),  # 100 MB a job over 3: 1,100 MB in 3 more
    ],
)
def test_a_worker_nears_its_end_a_warm_up_of_its_jobs_ahead(
    facts: dict[str, Any], warmup_s: float, nearing: bool
) -> None:
    config = PoolConfig(engine="fake", max_rss_mb=1024.0)
    assert policies.nearing_end(worker(**facts), config, warmup_s) is nearing


def test_relative_limits_count_from_the_warm_rss() -> None:
    config = PoolConfig(engine="fake", max_rss_mb=100.0, rss_relative=True)
    growing = worker(warm_rss_mb=500.0, rss_mb=590.0, jobs=10)  # 9 MB a job, limit 600
    assert policies.nearing_end(growing, config, 2.0)
    assert not policies.nearing_end(worker(warm_rss_mb=500.0, rss_mb=560.0), config, 2.0)


def test_spares_wanted_are_one_per_worker_nearing_its_end_up_to_spares() -> None:
    config = PoolConfig(engine="fake", workers=3, spares=2, max_rss_mb=None)
    near, far = worker(quota=11), worker(quota=50)
    assert policies.spares_wanted([far, far, far], config, 2.0) == 0
    assert policies.spares_wanted([near, far, far], config, 2.0) == 1
    assert policies.spares_wanted([near, near, near], config, 2.0) == 2
    always = PoolConfig(engine="fake", workers=3, spares=2, warm_spares=True)
    assert policies.spares_wanted([far, far, far], always, 2.0) == 2


@pytest.mark.parametrize(
    ("settings", "spares"),
    [
        ({"workers": 3}, 1),  # a core is left free to warm it
        ({"workers": 4}, 0),  # every core serves jobs: a spare would only take their CPU
        ({"workers": 6}, 0),
        ({"workers": 4, "warm_spares": True}, 1),  # asked to keep one warm
        ({"workers": 4, "spares": 2}, 2),  # as given
        ({"workers": 3, "spares": 0}, 0),
    ],
)
def test_by_default_a_spare_warms_only_on_a_core_the_workers_leave_free(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any], spares: int
) -> None:
    monkeypatch.setattr(config_module, "_usable_cores", lambda: 4)
    config = PoolConfig(engine="fake", **settings)
    assert config.effective_spares == spares
    near = worker(quota=11)
    assert policies.spares_wanted([near] * config.workers, config, 2.0) == spares
    assert config.window == 3 * (config.workers + spares)


LEAVING = (WorkerState.RETIRING, WorkerState.KILLING)


def test_a_default_pool_on_busy_cores_replaces_a_worker_only_after_it_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_module, "_usable_cores", lambda: 2)
    paths = make_inputs(tmp_path, [f"page-{i}.png" for i in range(12)])
    most = 0
    with fake_pool(workers=2, max_jobs_per_worker=3) as pool:
        for path in paths:
            assert pool.recognize(path).ok
            staying = [w for w in pool.stats().workers if w.state not in LEAVING]
            most = max(most, len(staying))
        assert pool.stats().exits.get("max_jobs", 0) >= 2
    assert most == 2  # a replacement starts as its worker leaves, never ahead of it


def test_a_pool_that_never_recycles_never_starts_a_spare(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"page-{i}.png" for i in range(30)])
    seen: set[int] = set()
    with fake_pool(workers=2, spares=1, max_jobs_per_worker=None, max_rss_mb=None) as pool:
        for path in paths:
            assert pool.recognize(path).ok
            stats = pool.stats()
            seen.update(w.pid for w in stats.workers)
            assert [w.state for w in stats.workers if w.state is WorkerState.SPARE] == []
    assert len(seen) == 2


def test_warm_spares_keeps_a_spare_from_the_start(tmp_path: Path) -> None:
    spare_ready = threading.Event()
    with fake_pool(workers=1, spares=1, warm_spares=True, max_jobs_per_worker=None) as pool:
        for _ in range(500):  # the spare warms beside the first worker; wait for it
            if any(w.state is WorkerState.SPARE for w in pool.stats().workers):
                spare_ready.set()
                break
            spare_ready.wait(0.02)
        assert spare_ready.is_set()
        assert len(pool.stats().workers) == 2


@pytest.mark.slow
def test_a_recycling_pool_warms_a_spare_only_near_a_recycle(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"page-{i}.png" for i in range(24)])
    exits: list[WorkerExit] = []
    counts: list[int] = []
    with fake_pool(
        workers=1,
        spares=1,
        max_jobs_per_worker=12,
        recycle_jitter=0.0,
        engine_options={"delay": 0.05},
        on_worker_exit=exits.append,
    ) as pool:
        counts.append(len(pool.stats().workers))
        for path in paths:
            assert pool.recognize(path).ok
            counts.append(len(pool.stats().workers))
    assert counts[0] == 1  # no spare while the first worker is far from its quota
    assert max(counts) == 2  # one warmed for the recycle
    assert [e.jobs for e in exits if e.cause.value == "max_jobs"] == [12, 12]
