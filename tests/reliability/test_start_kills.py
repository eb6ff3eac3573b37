"""Kills at every step of a worker's start, many times over, and the pool serves on: a
worker SIGKILLed between its fork and its handle, while it starts, SIGSTOPped while it
starts, SIGKILLed as soon as it is warm, and the fork server itself killed while jobs
run. None of these is the engine's fault, so none may break the pool (issue 18)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from ocrpool import ExitCause, OcrPool, PoolState, PoolStats, WorkerExit, WorkerState
from tests.support.served import wait_until

from .faults import kill, wait_stopped, worker_processes
from .fifos import Fifo
from .invariants import no_orphans
from .test_lease_states import good, pool

ROUNDS = 12
"""Kills in a row with no job between them: more than the old restart limit (10)."""
WAIT_S = 30.0


def exits(stats: PoolStats, *causes: str) -> int:
    return sum(stats.exits.get(cause, 0) for cause in causes)


def next_worker(ocr: OcrPool, state: WorkerState, skip: set[int]) -> int | None:
    """The pid of a worker in ``state`` not in ``skip``, once there is one; None once the
    pool is no longer running (a broken pool starts no worker)."""
    found: list[int] = []

    def look() -> bool:
        stats = ocr.stats()
        found[:] = [w.pid for w in stats.workers if w.state is state and w.pid not in skip]
        return bool(found) or stats.state is not PoolState.RUNNING

    wait_until(look, WAIT_S, f"a worker {state.value}")
    return found[0] if found else None


def serves_on(ocr: OcrPool, folder: Path) -> PoolStats:
    """The pool answers a good input, and is running."""
    result = ocr.submit_result(good(folder, "after.png")).result(timeout=WAIT_S)
    stats = ocr.stats()
    assert result.ok, result.error
    assert stats.state is PoolState.RUNNING
    return stats


def parent_is_fork_server(pid: int) -> bool:
    """Read from ``/proc``, not psutil: psutil's ``Process`` is what the test replaces."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            ppid = stat.read().rsplit(")", 1)[1].split()[1]
        with open(f"/proc/{ppid}/cmdline", "rb") as cmdline:
            return b"forkserver" in cmdline.read()
    except (OSError, IndexError):
        return False


def wait_reaped(pid: int) -> None:
    """Until ``pid`` is gone from ``/proc``: the fork server reaps its children."""
    deadline = time.monotonic() + WAIT_S
    while os.path.exists(f"/proc/{pid}"):
        assert time.monotonic() < deadline, f"worker {pid} not reaped"
        time.sleep(0.001)


@pytest.mark.slow
def test_a_worker_killed_between_its_fork_and_its_handle_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first 5 workers are SIGKILLed, and reaped, just before the pool makes its
    ``psutil.Process`` of them, so the pid is gone when it looks."""
    killed: list[int] = []

    class KilledFirst(psutil.Process):  # type: ignore[misc]
        """``psutil.Process``, but the first 5 workers die and are reaped first."""

        def __init__(self, pid: int | None = None) -> None:
            if pid is not None and len(killed) < 5 and parent_is_fork_server(pid):
                kill(pid)
                wait_reaped(pid)
                killed.append(pid)
            super().__init__(pid)

    monkeypatch.setattr(psutil, "Process", KilledFirst)  # what ocrpool.pool.handle calls
    with pool(workers=1, spares=1, warm_spares=True) as ocr:
        stats = serves_on(ocr, tmp_path)
    assert len(killed) == 5
    assert exits(stats, "killed") == 5
    assert no_orphans() == []


def wait_gone(ocr: OcrPool, pid: int) -> None:
    """Until the pool has ended worker ``pid`` and no longer lists it."""

    def gone() -> bool:
        listed = pid in {w.pid for w in ocr.stats().workers}
        return not listed and not os.path.exists(f"/proc/{pid}")

    wait_until(gone, WAIT_S, f"worker {pid} ended")


def kill_in_turn(ocr: OcrPool, state: WorkerState, signum: signal.Signals) -> list[int]:
    """Signal ``ROUNDS`` workers in ``state``, each as soon as there is one, and wait after
    each until the pool has ended it; the pids signalled."""
    hit: list[int] = []
    for _ in range(ROUNDS):
        pid = next_worker(ocr, state, set(hit))
        if pid is None:
            break
        kill(pid, signum)
        hit.append(pid)
        wait_gone(ocr, pid)
    return hit


@pytest.mark.slow
def test_workers_killed_while_they_start_are_replaced_many_times_over(tmp_path: Path) -> None:
    with pool(workers=1, spares=1, warm_spares=True, engine_options={"start_delay": 0.5}) as ocr:
        killed = kill_in_turn(ocr, WorkerState.STARTING, signal.SIGKILL)
        assert len(killed) == ROUNDS, ocr.stats()
        stats = serves_on(ocr, tmp_path)
    assert exits(stats, "killed") == ROUNDS
    assert "start_failed" not in stats.exits
    assert no_orphans() == []


@pytest.mark.slow
def test_workers_stopped_while_they_start_are_replaced_not_failed_starts(
    tmp_path: Path,
) -> None:
    """SIGSTOP (never SIGCONT) of 4 starting workers in a row, one more than
    ``max_start_failures``: the pool ends each after ``start_timeout`` and starts another;
    the engine is fine, so the pool is not broken (whatever cause it gives their exits)."""
    # 2 s: a start that is only slow (0.3 s here, more on a busy machine) must not time out
    settings: dict[str, Any] = dict(workers=1, spares=1, warm_spares=True, start_timeout=2.0)
    stopped: list[int] = []
    try:
        with pool(**settings, engine_options={"start_delay": 0.3}) as ocr:
            for _ in range(4):
                pid = next_worker(ocr, WorkerState.STARTING, set(stopped))
                if pid is None:
                    break
                kill(pid, signal.SIGSTOP)
                assert wait_stopped(pid)
                stopped.append(pid)
                wait_gone(ocr, pid)
            assert len(stopped) == 4, ocr.stats()
            stats = serves_on(ocr, tmp_path)
    finally:
        for pid in stopped:
            kill(pid)
    assert sum(n for cause, n in stats.exits.items() if cause != "shutdown") >= 4
    assert no_orphans() == []


@pytest.mark.slow
def test_workers_killed_as_soon_as_they_are_warm_are_replaced_many_times_over(
    tmp_path: Path,
) -> None:
    with pool(workers=1, spares=1, warm_spares=True) as ocr:
        killed = kill_in_turn(ocr, WorkerState.SPARE, signal.SIGKILL)
        assert len(killed) == ROUNDS, ocr.stats()
        stats = serves_on(ocr, tmp_path)
    assert exits(stats, "killed") == ROUNDS
    assert no_orphans() == []


def dead(process: psutil.Process) -> None:
    """Until ``process``, a child of this one, has exited; not reaped: multiprocessing
    waits for its fork server itself."""

    def exited() -> bool:
        try:
            return bool(process.status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True

    wait_until(exited, WAIT_S, f"process {process.pid} exited")


def fork_servers() -> Iterator[psutil.Process]:
    for child in psutil.Process().children():
        try:
            if "forkserver" in " ".join(child.cmdline()):
                yield child
        except psutil.Error:
            continue


@pytest.mark.slow
def test_the_fork_server_killed_while_jobs_run_costs_no_job(tmp_path: Path) -> None:
    """Its workers die with it (their parent-death signal); multiprocessing starts a new
    one for the next worker. Every job ends once and ok, and the pool serves on. A worker
    dies before the dying server is a zombie, so a replacement forked at once can still
    find it "alive" and be lost at its fork: an outside kill too, costing no job."""
    fifo = Fifo(tmp_path / "running.png")
    paths = [good(tmp_path, f"p{n:02d}.png") for n in range(20)]
    ended: list[WorkerExit] = []
    with pool(
        workers=2,
        spares=1,
        warm_spares=True,
        retries=2,
        engine_options={"delay": 0.05},
        on_worker_exit=ended.append,
    ) as ocr:
        next_worker(ocr, WorkerState.SPARE, set())  # every worker warm: none is starting
        before = set(worker_processes())
        running = ocr.submit_result(fifo.path)
        futures = [ocr.submit_result(path) for path in paths]
        fifo.wait_running()
        (server,) = fork_servers()
        server.kill()
        wait_until(lambda: not before & set(worker_processes()), WAIT_S, "its workers gone")
        fifo.finish()
        fifo.feed(until=running.done)
        results = [running.result(timeout=WAIT_S)]
        results += [future.result(timeout=WAIT_S) for future in futures]
        stats = serves_on(ocr, tmp_path)
    assert [r.input for r in results] == [fifo.path, *paths]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    # the fork server held their exit status: the pool reads 255, its death, for each
    # (any other such exit is a fork lost before its pid reached the pool)
    lost = [e for e in ended if e.cause in (ExitCause.KILLED, ExitCause.CRASH)]
    assert sorted(e.pid for e in lost if e.pid is not None) == sorted(before), ended
    assert exits(stats, "killed", "crash") == len(lost), stats.exits
    # the job that was running went back to the queue untried: no attempt charged
    assert [a.outcome for a in results[0].attempts] == ["ok"]
    assert no_orphans() == []


@pytest.mark.slow
def test_the_fork_server_killed_while_a_worker_starts_is_no_engine_failure(
    tmp_path: Path,
) -> None:
    """Three times in a row, the fork server is SIGKILLed while a worker warms up: the
    engine is fine, so the pool starts new workers from a new server and serves on."""
    with pool(workers=1, spares=1, warm_spares=True, engine_options={"start_delay": 0.5}) as ocr:
        rounds, seen = 0, set[int]()
        for _ in range(3):
            pid = next_worker(ocr, WorkerState.STARTING, seen)  # not the last one, dying
            if pid is None:
                break
            seen.add(pid)
            (server,) = fork_servers()
            server.kill()
            dead(server)  # the next start needs a new server
            rounds += 1
        assert rounds == 3, ocr.stats()
        stats = serves_on(ocr, tmp_path)
    assert "start_failed" not in stats.exits, stats.exits
    assert no_orphans() == []
