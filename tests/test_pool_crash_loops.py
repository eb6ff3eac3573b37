"""Workers that keep dying break the pool after a bounded number of restarts; poison
inputs among good ones only ever cost their own jobs."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest
from fakes import fake_pool, make_inputs

from ocrpool import CrashLoop, OcrPool, PoolState, WorkerCrashed, WorkerExit


@pytest.mark.slow
def test_an_engine_that_crashes_on_every_job_breaks_the_pool(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"crash-{i}.png" for i in range(12)])
    delays: list[float] = []
    pool: OcrPool | None = None

    def watch(_: WorkerExit) -> None:
        if pool is not None:
            delays.append(pool.stats().restart_delay_s)

    pool = fake_pool(
        workers=1, spares=0, retries=1, max_restarts=4, restart_window=120, on_worker_exit=watch
    )
    with pool:
        futures = [pool.submit(path) for path in paths]
        concurrent.futures.wait(futures, timeout=120)
        errors = [f.exception() for f in futures]
        stats = pool.stats()
        with pytest.raises(CrashLoop):
            pool.submit(paths[0])
    assert stats.state is PoolState.BROKEN
    crashed = [e for e in errors if type(e) is WorkerCrashed]
    loops = [e for e in errors if isinstance(e, CrashLoop)]
    assert len(crashed) + len(loops) == 12
    # 5 deaths in a row: two inputs tried twice, then the third's first try breaks the pool
    # (that job keeps the error of its own crash); the 9 inputs never tried get CrashLoop
    assert (len(crashed), len(loops)) == (3, 9)
    loop = loops[0]
    assert (loop.restarts, loop.causes) == (5, {"crash": 5})
    assert "Segmentation fault" in loop.stderr_tail
    assert max(delays) > 0  # restarts backed off before the pool gave up


@pytest.mark.slow
def test_poison_inputs_among_good_ones_never_break_the_pool(tmp_path: Path) -> None:
    names = []
    for i in range(4):
        names += [f"crash-{i}.png"] + [f"good-{i}-{j}.png" for j in range(3)]
    paths = make_inputs(tmp_path, names)
    with fake_pool(workers=1, spares=1, retries=1, max_restarts=2) as pool:
        results = list(pool.imap(paths))
        stats = pool.stats()
    assert stats.state is PoolState.RUNNING
    assert [r.ok for r in results] == ["good" in name for name in names]
    assert all(isinstance(r.error, WorkerCrashed) for r in results if not r.ok)
    assert len(stats.quarantined) == 4
    assert stats.crash_streak == 0
