"""Blame before breaking: every row of the blame table (pure), and what it means for a
pool whose inputs keep killing their workers (it never breaks; the inputs pay)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from fakes import fake_pool, make_inputs

from ocrpool import EngineStartError, OcrPool, PoolState, WorkerCrashed, WorkerExit
from ocrpool.pool.blame import Blamed, Cost, Death, judge
from ocrpool.pool.restarts import RestartBackoff
from ocrpool.stats import ExitCause

KILL, SEGV, TERM = -signal.SIGKILL, -signal.SIGSEGV, -signal.SIGTERM
C = ExitCause

# (end cause the pool recorded, exit code, pool sent SIGKILL, warm, started a job, frozen
#  [, the stop was aimed at a job that ended before it landed]) -> (cause, blamed, cost)
ROWS = {
    "retired by quota": (
        (C.MAX_JOBS, 0, False, True, False, False),
        (C.MAX_JOBS, "nobody", "none"),
    ),
    "retired by memory, killed after grace": (
        (C.SOFT_RSS, KILL, True, True, False, False),
        (C.SOFT_RSS, "nobody", "none"),
    ),
    "retirement cut short from outside": (
        (C.MAX_JOBS, KILL, False, True, False, False),
        (C.KILLED, "outside", "none"),
    ),
    "shutdown": ((C.SHUTDOWN, TERM, False, True, True, False), (C.SHUTDOWN, "caller", "fail")),
    "cancel": ((C.CANCELLED, TERM, False, True, True, False), (C.CANCELLED, "caller", "fail")),
    "timeout": ((C.TIMEOUT, TERM, False, True, True, False), (C.TIMEOUT, "input", "fail")),
    "timeout of a worker someone froze": (
        (C.TIMEOUT, KILL, True, True, True, True),
        (C.TIMEOUT, "outside", "attempt"),
    ),
    "timeout of a job never acknowledged": (
        (C.TIMEOUT, KILL, True, True, False, True),
        (C.TIMEOUT, "outside", "none"),
    ),
    "hard memory limit during a job": (
        (C.HARD_RSS, KILL, True, True, True, False),
        (C.HARD_RSS, "input", "attempt"),
    ),
    "crash during a job": ((None, SEGV, False, True, True, False), (C.CRASH, "input", "attempt")),
    "outside SIGKILL during a job": (
        (None, KILL, False, True, True, False),
        (C.KILLED, "input", "attempt"),
    ),
    "fork server lost during a job": (
        (None, 255, False, True, True, False),
        (C.KILLED, "outside", "none"),
    ),
    "timeout that landed on the job started after the one it meant": (
        (C.TIMEOUT, TERM, False, True, True, False, True),
        (C.TIMEOUT, "nobody", "none"),
    ),
    "cancel that landed on the job started after the one it meant": (
        (C.CANCELLED, KILL, True, True, True, False, True),
        (C.CANCELLED, "nobody", "none"),
    ),
    "crash with nothing started": (
        (None, SEGV, False, True, False, False),
        (C.CRASH, "outside", "none"),
    ),
    "outside SIGKILL of an idle worker": (
        (None, KILL, False, True, False, False),
        (C.KILLED, "outside", "none"),
    ),
    "outside SIGKILL while starting": (
        (None, KILL, False, False, False, False),
        (C.KILLED, "outside", "none"),
    ),
    "outside SIGTERM while starting": (
        (None, TERM, False, False, False, False),
        (C.KILLED, "outside", "none"),
    ),
    "outside SIGHUP while starting": (
        (None, -signal.SIGHUP, False, False, False, False),
        (C.KILLED, "outside", "none"),
    ),
    "outside SIGTERM during a job": (
        (None, TERM, False, True, True, False),
        (C.KILLED, "input", "attempt"),
    ),
    "fork server lost while starting": (
        (None, 255, False, False, False, False),
        (C.KILLED, "outside", "none"),
    ),
    "start timed out, worker frozen from outside": (
        (C.START_FAILED, KILL, True, False, False, True),
        (C.START_FAILED, "outside", "none"),
    ),
    "start failed": ((None, 1, False, False, False, False), (C.START_FAILED, "engine", "none")),
    "start crashed": ((None, SEGV, False, False, False, False), (C.START_FAILED, "engine", "none")),
    "start timed out": (
        (C.START_FAILED, KILL, True, False, False, False),
        (C.START_FAILED, "engine", "none"),
    ),
}


@pytest.mark.parametrize("row", ROWS, ids=list(ROWS))
def test_every_row_of_the_blame_table(row: str) -> None:
    facts, (cause, blamed, cost) = ROWS[row]
    verdict = judge(Death(*facts))
    assert (verdict.cause, verdict.blamed, verdict.cost) == (cause, Blamed(blamed), Cost(cost))
    assert verdict.start_failure == (blamed == "engine")


@pytest.mark.slow
def test_an_engine_that_crashes_on_every_job_costs_jobs_never_the_pool(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"crash-{i}.png" for i in range(12)] + ["good.png"])
    delays: list[float] = []
    pool: OcrPool | None = None

    def watch(_: WorkerExit) -> None:
        if pool is not None:
            delays.append(pool.stats().restart_delay_s)

    pool = fake_pool(workers=1, spares=0, retries=1, on_worker_exit=watch)
    with pool:
        results = list(pool.imap(paths[:-1]))
        good = pool.recognize(paths[-1])
        stats = pool.stats()
    assert stats.state is PoolState.RUNNING
    assert all(isinstance(r.error, WorkerCrashed) for r in results)
    assert all(len(r.attempts) == 2 for r in results)  # each tried twice, then quarantined
    assert "Segmentation fault" in results[0].error.stderr_tail  # type: ignore[union-attr]
    assert len(stats.quarantined) == 12
    assert good.ok and good.text == "good"
    assert delays and max(delays) == 0  # the inputs paid; the next start never waited


def test_poison_inputs_among_good_ones_cost_only_their_own_jobs(tmp_path: Path) -> None:
    names = []
    for i in range(4):
        names += [f"crash-{i}.png"] + [f"good-{i}-{j}.png" for j in range(3)]
    paths = make_inputs(tmp_path, names)
    with fake_pool(workers=1, spares=1, retries=1) as pool:
        results = list(pool.imap(paths))
        stats = pool.stats()
    assert stats.state is PoolState.RUNNING
    assert [r.ok for r in results] == ["good" in name for name in names]
    assert all(isinstance(r.error, WorkerCrashed) for r in results if not r.ok)
    assert len(stats.quarantined) == 4


@pytest.mark.slow
def test_only_failed_starts_break_a_pool_and_they_fail_what_waits(tmp_path: Path) -> None:
    """Starts that begin to fail mid-life (a licence server gone) break the pool with
    ``EngineStartError`` once ``max_start_failures`` fail in a row; queued jobs get it."""
    marker = tmp_path / "outage"
    paths = make_inputs(tmp_path, ["crash.png"] + [f"good-{i}.png" for i in range(3)])
    options = {"fail_start_while": str(marker), "delay": 0.2}
    with fake_pool(workers=1, spares=0, retries=0, engine_options=options) as pool:
        marker.touch()
        crashed = pool.submit_result(paths[0])  # its worker dies; no replacement can start
        waiting = [pool.submit_result(path) for path in paths[1:]]
        assert isinstance(crashed.result(timeout=60).error, WorkerCrashed)
        errors = [future.result(timeout=60).error for future in waiting]
        assert pool.stats().state is PoolState.BROKEN
        with pytest.raises(EngineStartError):
            pool.submit(paths[1])
    assert all(isinstance(error, EngineStartError) for error in errors)
    assert errors[0].attempts == 3  # type: ignore[union-attr]


def test_deaths_from_outside_back_off_the_next_start_and_a_finished_job_resets_it() -> None:
    backoff = RestartBackoff()
    assert [backoff.worker_died() for _ in range(6)] == [0.0, 0.25, 0.5, 1.0, 2.0, 2.0]
    # a long streak (forks failing past a process limit) stays at the cap: 2.0 ** 1025
    # overflows, which killed the supervisor's thread
    assert {backoff.worker_died() for _ in range(2000)} == {2.0}
    backoff.job_finished()
    assert (backoff.streak, backoff.worker_died()) == (0, 0.0)
