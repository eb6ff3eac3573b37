"""No worker outlives its pool: after close, Ctrl-C, SIGTERM, or a SIGKILLed supervisor."""

from __future__ import annotations

import errno
import gc
import json
import multiprocessing.util
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from multiprocessing import forkserver, resource_tracker
from pathlib import Path

import psutil
import pytest
from fakes import fake_pool, make_inputs, worker_processes

from ocrpool import EngineStartError, OcrPool, PoolClosed, PoolState
from ocrpool.pool import scratch, supervisor
from tests.support.served import wait_until

SUPERVISOR_SCRIPT = textwrap.dedent(
    """
    import json, signal, sys
    from ocrpool import OcrPool

    if __name__ == "__main__":
        # Ctrl-C as a terminal's Python gets it: a suite run as a background job of a
        # non-interactive shell hands its children SIGINT ignored (POSIX), and then the
        # signal this file sends would stop nothing
        signal.signal(signal.SIGINT, signal.default_int_handler)
        settings = dict(workers=2, spares=1, warm_spares=True, engine="fake")
        with OcrPool(**settings, engine_options={"delay": 60}) as pool:
            futures = [pool.submit(sys.argv[1]) for _ in range(4)]
            print(json.dumps([w.pid for w in pool.stats().workers]), flush=True)
            futures[0].result()
    """
)


def _start_supervisor(tmp_path: Path) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    (image,) = make_inputs(tmp_path, ["page.png"])
    script = tmp_path / "supervisor.py"
    script.write_text(SUPERVISOR_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), image], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert proc.stdout is not None
    pids = json.loads(proc.stdout.readline())
    assert len(pids) == 3
    return proc, [psutil.Process(pid) for pid in pids]


def _assert_all_gone(workers: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(workers, timeout=20)
    assert alive == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_their_supervisor(tmp_path: Path, signum: int) -> None:
    proc, workers = _start_supervisor(tmp_path)
    proc.send_signal(signum)
    proc.wait(timeout=20)
    _assert_all_gone(workers)


def test_ctrl_c_stops_the_pool_and_its_workers(tmp_path: Path) -> None:
    proc, workers = _start_supervisor(tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) != 0  # KeyboardInterrupt propagates after the pool shut down
    _assert_all_gone(workers)


ROOT = Path(__file__).resolve().parents[1]
"""The checkout under test, which a script run in a child process imports."""
UNCLOSED_SCRIPT = textwrap.dedent(
    """
    import json, logging, multiprocessing, sys, threading, time
    from ocrpool import OcrPool

    if __name__ == "__main__":
        if sys.argv[2] == "mp-logging":  # registers multiprocessing's exit function again
            multiprocessing.log_to_stderr(logging.INFO)
        pool = OcrPool(workers=2, spares=0, engine="fake", engine_options={"delay": 60})
        futures = [pool.submit(sys.argv[1]) for _ in range(3)]
        while not futures[1].running():
            time.sleep(0.01)
        print(json.dumps([w.pid for w in pool.stats().workers]), flush=True)
        sys.stdin.readline()  # the test has its workers in hand
        if sys.argv[2] == "raise":
            raise RuntimeError("the program failed")
        if sys.argv[2] == "thread-exit":
            threading.Thread(target=sys.exit).start()
        # and the interpreter exits, the pool never closed
    """
)


@pytest.mark.parametrize("how", ["end", "raise", "thread-exit", "mp-logging"])
def test_the_interpreter_exits_promptly_and_cleanly_past_a_pool_never_closed(
    tmp_path: Path, how: str
) -> None:
    """multiprocessing's own exit function terminated and joined the workers while the
    supervisor reaped and released them: exit hung for ever now and then (joining a
    sentinel the supervisor had closed), or failed with "process object is closed", and
    the pool's folder was left in the temp dir. Also after ``multiprocessing.log_to_stderr``
    (or ``get_logger``), which registers that exit function again, to run first: the
    pools are stopped from inside it, before it terminates and joins any child."""
    (image,) = make_inputs(tmp_path, ["page.png"])
    script = tmp_path / "unclosed.py"
    script.write_text(UNCLOSED_SCRIPT)
    temp = tmp_path / "temp"
    temp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(script), image, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    workers = [psutil.Process(pid) for pid in json.loads(proc.stdout.readline())]
    _, stderr = proc.communicate("go\n", timeout=30)
    assert proc.returncode == (1 if how == "raise" else 0), stderr
    assert "Exception ignored" not in stderr
    assert "calling terminate()" not in stderr and "calling join()" not in stderr
    _assert_all_gone(workers)
    assert list(temp.glob("ocrpool-*")) == []


def test_close_leaves_no_child_process(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"p{i}.png" for i in range(20)])
    with fake_pool(workers=2, spares=1, warm_spares=True, max_jobs_per_worker=5) as pool:
        assert len(worker_processes()) == 3
        assert all(r.ok for r in pool.imap(paths))
    assert worker_processes() == []
    assert pool.stats().state is PoolState.CLOSED


def test_a_pool_dropped_unclosed_finishes_its_jobs_then_ends(tmp_path: Path) -> None:
    """As ``ProcessPoolExecutor``'s: it kept its workers, its thread, its descriptors and
    its folder for as long as the process lived."""
    paths = make_inputs(tmp_path, ["a.png", "b.png"])
    resource_tracker.ensure_running()  # both keep descriptors open from their start on
    forkserver.ensure_running()
    gc.collect()
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    pool = fake_pool(workers=1, spares=0, engine_options={"delay": 0.2})
    futures = [pool.submit(path) for path in paths]
    folder = pool._supervisor.folder
    del pool
    gc.collect()
    assert [future.result(timeout=30).text for future in futures] == ["a", "b"]
    wait_until(lambda: threading.active_count() == threads, 10, "the supervisor thread ended")
    assert worker_processes() == []
    assert len(os.listdir("/proc/self/fd")) == fds
    assert not os.path.exists(folder)


def test_close_drains_queued_jobs(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"q{i}.png" for i in range(10)])
    pool = fake_pool(workers=1, spares=0, engine_options={"delay": 0.05})
    futures = [pool.submit(p) for p in paths]
    pool.close()
    assert [f.result().text for f in futures] == [f"q{i}" for i in range(10)]
    with pytest.raises(PoolClosed):
        pool.submit(paths[0])


def test_shutdown_with_cancel_fails_queued_and_running_jobs_fast(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"c{i}.png" for i in range(10)])
    pool = fake_pool(workers=2, spares=0, engine_options={"delay": 60}, job_timeout=None)
    futures = [pool.submit(p) for p in paths]
    results = pool.imap(paths[:2])
    pool.shutdown(cancel_pending=True)
    for future in futures:
        with pytest.raises(PoolClosed):
            future.result()
    assert [type(r.error) for r in results] == [PoolClosed, PoolClosed]
    assert worker_processes() == []
    assert pool.stats().exits == {"shutdown": 2}


@pytest.mark.slow
def test_supervisor_keeps_no_engine_and_leaks_no_fds_or_threads(tmp_path: Path) -> None:
    (image,) = make_inputs(tmp_path, ["noop.png"])
    me = psutil.Process()
    # both start once per interpreter and keep descriptors open from then on
    resource_tracker.ensure_running()
    forkserver.ensure_running()
    gc.collect()  # what earlier tests left for the collector closes now, not mid-run
    fds, threads = me.num_fds(), threading.active_count()
    with fake_pool(workers=2, spares=1, max_jobs_per_worker=200) as pool:
        results = pool.imap(image for _ in range(10_000))
        assert sum(r.ok for r in results) == 10_000
    assert pool.stats().recycles >= 2  # workers past their quota leave as max_jobs
    # a descriptor or thread leaked by any of the recycles would still be open here
    assert me.num_fds() == fds
    assert threading.active_count() == threads
    assert "aspose.ocr" not in sys.modules
    assert "coreclr" not in Path(f"/proc/{os.getpid()}/maps").read_text()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_bug_in_the_supervisor_fails_every_open_job_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own bug is the one thing that may end a supervisor: then nothing waits forever."""
    paths = make_inputs(tmp_path, [f"{i}.png" for i in range(6)])
    from ocrpool.pool import policies

    with fake_pool(workers=1, spares=0, engine_options={"delay": 0.5}) as pool:
        futures = [pool.submit(path) for path in paths]
        futures[0].result(timeout=30)

        def broken(*_: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(policies, "dispatch", broken)
        errors = [future.exception(timeout=30) for future in futures[1:]]
        assert all(isinstance(error, PoolClosed) for error in errors)
        assert pool.stats().state is PoolState.BROKEN
        with pytest.raises(PoolClosed, match="supervisor failed"):
            pool.submit(paths[0])
    assert worker_processes() == []


BLOCKED_SIGCHLD_SCRIPT = textwrap.dedent(
    """
    import signal, sys
    from ocrpool import OcrPool

    if __name__ == "__main__":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        with OcrPool(workers=1, spares=0, max_jobs_per_worker=1, engine="fake") as pool:
            print(*(result.text for result in pool.map(sys.argv[1:])), flush=True)
    """
)


def test_a_pool_started_with_sigchld_blocked_sees_its_workers_exit(tmp_path: Path) -> None:
    """A signal mask is inherited across fork and exec, so a parent that blocked SIGCHLD
    hands it on; the fork server reports a worker's exit only once SIGCHLD wakes it, so
    no exit was ever seen: the first recycle, and the close, waited for ever."""
    images = make_inputs(tmp_path, ["one.png", "two.png"])
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKED_SIGCHLD_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), *images],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["one", "two"]


def test_a_supervisor_thread_that_cannot_start_is_an_engine_start_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a limit on threads or memory (``ulimit -v``, a container's ``pids.max``) the
    thread's start raised a bare RuntimeError (a traceback out of ``ocrpool run``), left
    the pool's folder behind, and at exit ``cannot join thread before it is started``."""
    start = threading.Thread.start

    def refuse(thread: threading.Thread) -> None:
        if thread.name == "ocrpool-supervisor":
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    multiprocessing.util.get_temp_dir()  # multiprocessing's own, kept where it is
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    running = set(supervisor._running)
    with pytest.raises(EngineStartError, match="supervisor thread: can't start new thread"):
        OcrPool(workers=1, engine="fake")
    assert list(tmp_path.glob("ocrpool-*")) == []
    assert supervisor._running == running  # the exit has nothing of it to stop


@pytest.mark.parametrize("short_of", ["lock", "pipe"])
def test_a_pool_out_of_descriptors_for_its_folder_or_pipe_raises_engine_start_error(
    short_of: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a descriptor or two left, the folder's lock or the supervisor's wake-up pipe
    could not be made: a bare OSError came out of ``OcrPool()``, and the folder stayed."""

    def refuse(*args: object) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    if short_of == "lock":
        monkeypatch.setattr(scratch, "_locked", refuse)
    else:
        monkeypatch.setattr(supervisor, "Readiness", refuse)
    multiprocessing.util.get_temp_dir()  # multiprocessing's own, kept where it is
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    running = set(supervisor._running)
    with pytest.raises(EngineStartError, match=r"Too many open files.*ulimit -n"):
        OcrPool(workers=1, engine="fake")
    assert list(tmp_path.glob("ocrpool-*")) == []
    assert supervisor._running == running
