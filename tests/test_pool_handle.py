"""The supervisor's handle on one worker, and the errors a worker's end gives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from fakes import make_inputs

from ocrpool.errors import JobCancelled, JobTimeout, MemoryLimitExceeded, WorkerCrashed
from ocrpool.pool.blame import Blamed, Cost, judge
from ocrpool.pool.exits import lost_job_error, start_failure_error
from ocrpool.pool.handle import PIPE_SAFE_BYTES, Ask, WorkerHandle, process_context
from ocrpool.pool.protocol import Ack, Job, Outcome, Ready, WorkerSpec
from ocrpool.stats import ExitCause, WorkerState


def _ready_worker(tmp_path: Path, quota: int | None = None) -> WorkerHandle:
    spec = WorkerSpec("fake", {}, str(tmp_path / "worker.log"))
    worker = WorkerHandle(process_context("forkserver"), spec, quota=quota)
    ready = worker.conn.recv()
    assert isinstance(ready, Ready)
    assert worker.ready(ready.rss_mb)
    worker.activate()
    return worker


def test_a_failed_send_does_not_hide_what_the_dead_worker_wrote(tmp_path: Path) -> None:
    (crash,) = make_inputs(tmp_path, ["crash.png"])
    worker = _ready_worker(tmp_path)
    assert worker.send(Job(1, crash))
    assert worker.reap() is not None  # it acknowledged the job, then segfaulted
    assert not worker.send(Job(2, crash))  # the supervisor learns it is gone by writing
    assert worker.receive_rest() == [Ack(1)]  # ... and must still read the acknowledgement
    worker.release()


def test_large_bytes_that_could_not_be_sent_leave_no_file(tmp_path: Path) -> None:
    """Bytes go to the worker through a file written first: a send that then fails (the
    worker is gone) removes it, or a job cancelled before its retry would leave it."""
    (crash,) = make_inputs(tmp_path, ["crash.png"])
    worker = _ready_worker(tmp_path)
    assert worker.send(Job(1, crash))
    assert worker.reap() is not None
    assert not worker.send(Job(2, b"x" * (2 * PIPE_SAFE_BYTES)))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["crash.png", "worker.log"]
    worker.release()


def test_the_life_cycle_is_enforced_and_the_quota_is_a_ceiling(tmp_path: Path) -> None:
    (image,) = make_inputs(tmp_path, ["a.png"])
    worker = _ready_worker(tmp_path, quota=1)
    with pytest.raises(RuntimeError, match="idle -> spare"):
        worker._become(WorkerState.SPARE)
    assert worker.can_take(held=0, depth=0)
    assert worker.send(Job(1, image))
    assert worker.state is WorkerState.BUSY
    assert not worker.can_take(held=1, depth=1)  # a second job would pass the quota of 1
    worker.stop(ExitCause.SHUTDOWN, Ask.NOTHING, 0.0)
    assert worker.state is WorkerState.KILLING
    assert worker.reap() == -signal.SIGKILL
    worker.release()


def test_a_lost_job_gets_the_error_of_its_workers_end() -> None:
    def error(cause: ExitCause, exitcode: int | None) -> object:
        return lost_job_error(
            cause, "x.png", 42, exitcode, "tail", timeout=5.0, rss_mb=900.0, limit_mb=800.0
        )

    crash = error(ExitCause.CRASH, -signal.SIGSEGV)
    assert isinstance(crash, WorkerCrashed)
    assert (crash.signal, crash.exitcode, crash.stderr_tail) == ("SIGSEGV", -11, "tail")
    hard = error(ExitCause.HARD_RSS, -signal.SIGKILL)
    assert isinstance(hard, MemoryLimitExceeded)
    assert (hard.rss_mb, hard.limit_mb, hard.signal) == (900.0, 800.0, "SIGKILL")
    timeout = error(ExitCause.TIMEOUT, -signal.SIGTERM)
    assert isinstance(timeout, JobTimeout)
    assert (timeout.timeout, timeout.stderr_tail) == (5.0, "tail")
    assert isinstance(error(ExitCause.CANCELLED, -signal.SIGTERM), JobCancelled)
    start = start_failure_error("fake", 42, None, -6, "tail", attempt=2, of=3)
    assert (start.attempts, start.exitcode, start.stderr_tail) == (2, -6, "tail")
    assert "killed by SIGABRT" in start.message and "ocrpool doctor" in start.message


def test_a_worker_killed_before_its_handle_sees_it_is_an_ordinary_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork-to-handle race of issue 18: psutil cannot see the worker any more."""

    def killed_first(pid: int) -> psutil.Process:
        os.kill(pid, signal.SIGKILL)
        raise psutil.NoSuchProcess(pid)  # what psutil says once the fork server reaped it

    monkeypatch.setattr("ocrpool.pool.handle.psutil.Process", killed_first)
    spec = WorkerSpec("fake", {}, str(tmp_path / "worker.log"))
    worker = WorkerHandle(process_context("forkserver"), spec, quota=None)
    assert worker.reap() == -signal.SIGKILL
    assert worker.sample_rss() is None
    worker.release()


@pytest.mark.parametrize("cause", [ExitCause.TIMEOUT, ExitCause.CANCELLED])
def test_a_stop_that_lands_after_its_job_ended_costs_the_next_job_nothing(
    tmp_path: Path, cause: ExitCause
) -> None:
    """The pool stops a worker for job 1 (its deadline, a cancel) in the moment the
    worker answered job 1 and started the prefetched job 2: job 2 is not to pay."""
    first, second = make_inputs(tmp_path, ["first.png", "second.png"])
    spec = WorkerSpec("fake", {"delay": 0.3}, str(tmp_path / "worker.log"))
    worker = WorkerHandle(process_context("forkserver"), spec, quota=None)
    assert isinstance(worker.conn.recv(), Ready)
    worker.state = WorkerState.BUSY
    assert worker._send(Job(1, first)) and worker._send(Job(2, second))
    messages: list[object] = []
    while not any(isinstance(m, Outcome) for m in messages) and worker.conn.poll(10):
        messages += worker.receive_ready()
    assert [type(m) for m in messages] == [Ack, Outcome] and messages[1].started == 2
    worker.stop(cause, Ask.NOTHING, 0.0, aimed_at=1)  # aimed at job 1, which has ended
    verdict = judge(worker.death(worker.reap(), started_job=2))
    assert (verdict.blamed, verdict.cost) == (Blamed.NOBODY, Cost.NONE)
    aimed_right = judge(worker.death(worker.reap(), started_job=1))
    assert aimed_right.cost is Cost.FAIL
    worker.release()


_POOL_IN_A_LONG_TMPDIR = """
import logging, sys
from ocrpool import OcrPool

if __name__ == "__main__":
    logging.basicConfig()
    with OcrPool(engine="fake", workers=1, spares=0) as pool:
        print(pool.recognize(sys.argv[1]).text)
"""


@pytest.mark.parametrize(("length", "falls_back"), [(75, False), (76, True)])
def test_a_temp_folder_too_long_for_the_fork_servers_socket_starts_workers_by_spawn(
    tmp_path: Path, length: int, falls_back: bool
) -> None:
    """A cluster job's long ``TMPDIR``: multiprocessing puts the fork server's socket at
    ``<TMPDIR>/pymp-XXXXXXXX/listener-XXXXXXXX``, a Unix socket path holds 107 bytes, and
    past them every worker start failed (``AF_UNIX path too long``) and the pool broke."""
    (image,) = make_inputs(tmp_path, ["long-tmpdir.png"])
    script = tmp_path / "pool.py"
    script.write_text(_POOL_IN_A_LONG_TMPDIR)
    temp = tmp_path / "t"
    temp = temp / ("x" * (length - len(str(temp)) - 1))  # 75: the socket's path is 107 bytes
    temp.mkdir(parents=True)
    assert len(str(temp)) == length
    done = subprocess.run(
        [sys.executable, str(script), image],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(temp)},
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "long-tmpdir"
    assert ("too long a path for the fork server's socket" in done.stderr) is falls_back
