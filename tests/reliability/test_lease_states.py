"""A worker SIGKILLed in each state of its lease costs at most its own job, and the pool
goes on: starting, spare, idle, a job sent but not acknowledged, a job running, retiring.
SIGSTOP (never followed by SIGCONT), the OOM killer's choice, and engine starts that fail
or hang for a while are here too."""

from __future__ import annotations

import random
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from ocrpool import (
    EngineStartError,
    ExitCause,
    JobTimeout,
    OcrPool,
    PoolState,
    WorkerCrashed,
    WorkerExit,
    WorkerState,
)
from tests.support.served import wait_until

from .faults import Fault, Monkey, is_stopped, kill, rss_mb
from .fifos import Fifo
from .invariants import no_orphans

FAST: dict[str, Any] = dict(engine="fake", job_timeout=30, kill_grace=0.5, recycle_jitter=0.0)


def pool(**settings: Any) -> OcrPool:
    return OcrPool(**{**FAST, **settings})


def good(folder: Path, name: str = "good.png") -> str:
    path = folder / name
    path.write_bytes(b"fake image")
    return str(path)


def worker_in(ocr: OcrPool, state: WorkerState) -> int:
    """The pid of a worker in ``state``, once there is one."""
    found: list[int] = []

    def look() -> bool:
        found[:] = [w.pid for w in ocr.stats().workers if w.state is state]
        return bool(found)

    wait_until(look, 30, f"a worker {state.value}")
    return found[0]


def exits_reach(ocr: OcrPool, cause: ExitCause, count: int) -> None:
    wait_until(lambda: ocr.stats().exits.get(cause.value, 0) >= count, 30, f"{count} {cause}")


@pytest.mark.parametrize("state", [WorkerState.SPARE, WorkerState.IDLE])
def test_sigkill_of_a_warm_worker_is_replaced(tmp_path: Path, state: WorkerState) -> None:
    with pool(workers=1, spares=1, warm_spares=True) as ocr:
        kill(worker_in(ocr, state))
        exits_reach(ocr, ExitCause.KILLED, 1)
        assert ocr.recognize(good(tmp_path)).ok
    assert ocr.stats().exits == {"killed": 1, "shutdown": 2}
    assert no_orphans() == []


@pytest.mark.slow
def test_sigkill_of_a_starting_worker_is_not_a_start_failure(tmp_path: Path) -> None:
    with pool(workers=1, spares=1, warm_spares=True, engine_options={"start_delay": 1.0}) as ocr:
        kill(worker_in(ocr, WorkerState.IDLE))  # the spare steps in, a replacement starts
        kill(worker_in(ocr, WorkerState.STARTING))
        exits_reach(ocr, ExitCause.KILLED, 2)
        assert ocr.recognize(good(tmp_path)).ok
        stats = ocr.stats()
    assert stats.exits["killed"] == 2
    assert "start_failed" not in stats.exits
    assert no_orphans() == []


def test_sigkill_with_a_job_sent_but_not_acknowledged_costs_no_attempt(tmp_path: Path) -> None:
    with pool(workers=1, spares=0) as ocr:
        pid = worker_in(ocr, WorkerState.IDLE)
        kill(pid, signal.SIGSTOP)  # it can no longer read the job it is about to be sent
        future = ocr.submit(good(tmp_path))
        worker_in(ocr, WorkerState.BUSY)
        kill(pid)
        result = future.result(timeout=30)
    assert [a.outcome for a in result.attempts] == ["ok"]  # never started: never blamed
    assert result.worker_pid != pid
    assert ocr.stats().exits == {"killed": 1, "shutdown": 1}


def test_sigkill_with_a_job_running_retries_it_on_a_fresh_worker(tmp_path: Path) -> None:
    fifo = Fifo(tmp_path / "running.png")
    with pool(workers=1, spares=0, retries=1) as ocr:
        future = ocr.submit(fifo.path)
        fifo.wait_running()
        pid = worker_in(ocr, WorkerState.BUSY)
        kill(pid)
        exits_reach(ocr, ExitCause.KILLED, 1)  # gone: its end of the FIFO is closed
        fifo.finish()
        fifo.feed(until=future.done)  # the retry, on a fresh worker
        result = future.result(timeout=30)
    assert [a.outcome for a in result.attempts] == ["WorkerCrashed", "ok"]
    assert result.attempts[0].worker_pid == pid
    assert "SIGKILL" in result.attempts[0].message


def test_sigkill_of_a_retiring_worker_loses_nothing(tmp_path: Path) -> None:
    settings = dict(workers=1, spares=1, max_jobs_per_worker=1, retire_grace=30.0)
    with pool(**settings, engine_options={"close_delay": 30}) as ocr:
        assert ocr.recognize(good(tmp_path)).ok  # its quota: it now closes its engine
        kill(worker_in(ocr, WorkerState.RETIRING))
        exits_reach(ocr, ExitCause.KILLED, 1)  # an outside kill, not its retirement
        assert ocr.recognize(good(tmp_path, "after.png")).ok
        assert ocr.stats().failed == 0
        for worker in ocr.stats().workers:  # the rest would take close_delay each
            kill(worker.pid)
    assert no_orphans() == []


@pytest.mark.slow
def test_sigstop_of_a_busy_worker_ends_as_a_timeout_and_it_is_replaced(tmp_path: Path) -> None:
    fifo = Fifo(tmp_path / "running.png")
    exits: list[WorkerExit] = []
    with pool(workers=1, spares=0, job_timeout=1.0, on_worker_exit=exits.append) as ocr:
        future = ocr.submit(fifo.path)
        fifo.wait_running()
        pid = worker_in(ocr, WorkerState.BUSY)
        kill(pid, signal.SIGSTOP)
        with pytest.raises(JobTimeout):
            future.result(timeout=30)
        fifo.finish()
        assert ocr.recognize(good(tmp_path)).ok
    assert (exits[0].pid, exits[0].cause, exits[0].exitcode) == (
        pid,
        ExitCause.TIMEOUT,
        -signal.SIGKILL,
    )


@pytest.mark.slow
def test_sigstop_before_a_job_is_acknowledged_still_ends_the_job(tmp_path: Path) -> None:
    ocr = pool(workers=1, spares=0, job_timeout=1.0)
    pid = worker_in(ocr, WorkerState.IDLE)
    kill(pid, signal.SIGSTOP)
    future = ocr.submit(good(tmp_path))
    try:
        result = future.result(timeout=1.0 + 0.5 + 5)  # job_timeout + kill_grace + slack
        assert result.ok or isinstance(result.error, JobTimeout)
        assert not is_stopped(pid)
    finally:
        kill(pid)
        ocr.close()


def test_the_oom_killers_choice_costs_only_its_own_job(tmp_path: Path) -> None:
    first, second = Fifo(tmp_path / "a.png"), Fifo(tmp_path / "b.png")
    settings = dict(workers=2, spares=0, retries=0, max_rss_mb=None)
    with pool(**settings, engine_options={"balloon_mb": 100}) as ocr:
        big = ocr.recognize(good(tmp_path, "balloon.png")).worker_pid  # keeps its 100 MB
        futures = [ocr.submit(first.path), ocr.submit(second.path)]
        first.wait_running()
        second.wait_running()
        assert big is not None and rss_mb(big) >= 100
        with Monkey(ocr, random.Random(0), 0.0) as monkey:
            monkey.inject(Fault.OOM_KILL)
        first.finish()
        second.finish()
        results = [f.result(timeout=30) if not f.exception(30) else f.exception() for f in futures]
    assert [k.pid for k in monkey.kills] == [big]
    crashed = [r for r in results if isinstance(r, WorkerCrashed)]
    assert len(crashed) == 1 and crashed[0].signal == "SIGKILL"
    assert sum(getattr(r, "ok", False) for r in results) == 1


@pytest.mark.slow
@pytest.mark.parametrize("how", ["raise", "hang"])
def test_an_engine_that_cannot_start_for_a_while_recovers(tmp_path: Path, how: str) -> None:
    outage = tmp_path / "outage"
    failed = threading.Event()

    def on_exit(record: WorkerExit) -> None:
        if record.cause is ExitCause.START_FAILED:
            outage.unlink(missing_ok=True)  # the outage ends after the first failed start
            failed.set()

    options = {"fail_start": how, "fail_start_while": str(outage)}
    settings = dict(workers=1, spares=0, max_jobs_per_worker=2, start_timeout=1.0)
    with pool(**settings, engine_options=options, on_worker_exit=on_exit) as ocr:
        outage.touch()  # replacements from now on cannot start
        results = list(ocr.imap(good(tmp_path, f"p{i}.png") for i in range(6)))
        assert failed.is_set()
    stats = ocr.stats()
    assert all(r.ok for r in results)
    assert stats.exits["start_failed"] == 1
    assert stats.state is PoolState.CLOSED


def test_an_engine_whose_start_hangs_breaks_the_pool_after_bounded_attempts() -> None:
    with pytest.raises(EngineStartError, match=r"not ready after 0\.5s") as caught:
        pool(
            workers=2,
            start_timeout=0.5,
            max_start_failures=2,
            engine_options={"fail_start": "hang"},
        )
    assert caught.value.attempts == 2
    assert no_orphans() == []
