"""What callers, engines and native libraries hand the pool that it cannot carry as it
is (a source of a class a worker cannot import, a result that is not a ``Recognition``
or does not pickle, bytes on the pipe that are not a message, a callback that raises
``SystemExit``) costs one job at most, never the supervisor."""

from __future__ import annotations

import errno
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

import psutil
import pytest
from fakes import fake_pool, make_inputs

from ocrpool import (
    EngineError,
    EngineStartError,
    JobCancelled,
    JobOptions,
    OcrResult,
    PoolState,
    WorkerCrashed,
)
from ocrpool.engines.base import Source
from ocrpool.engines.fake import FakeEngine
from ocrpool.exports import ExportFormat
from ocrpool.pool import supervisor as supervisor_module
from ocrpool.results import Recognition
from ocrpool.stats import WorkerInfo, WorkerState
from tests.support.served import wait_until


class OddEngine(FakeEngine):
    """The fake engine, misbehaving on inputs whose names ask for it."""

    def recognize(self, source: Source, options: JobOptions | None = None) -> Recognition:
        name = os.path.basename(source) if isinstance(source, str) else ""
        if "dict" in name:
            return {"text": "not a Recognition"}  # type: ignore[return-value]
        if "unpicklable" in name:
            error = EngineError("an error carrying a lock")
            error.lock = threading.Lock()  # type: ignore[attr-defined]
            raise error
        if "garble" in name:
            _write_garbage_to_sockets()
        return super().recognize(source, options)


def _write_garbage_to_sockets() -> None:
    """What a native library writing to a descriptor it does not own does: bytes that are
    not a message, on every socket of this process (the worker's pipe is one)."""
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                os.write(fd, b"\x00\x00\x00\x08garbage!")
        except OSError:
            pass


ODD = "test_pool_bad_data:OddEngine"


def test_a_source_of_a_class_no_worker_can_import_is_sent_as_a_plain_path(
    tmp_path: Path,
) -> None:
    class LocalPath(str):  # pickles by reference to a local class: it cannot be sent
        pass

    class LocalBytes(bytes):
        pass

    (path,) = make_inputs(tmp_path, ["scan.png"])
    with fake_pool(workers=1, spares=0) as pool:
        assert pool.recognize(LocalPath(path)).text == "scan"
        plain = pool.recognize(b"fake image").text
        assert pool.recognize(LocalBytes(b"fake image")).text == plain
        assert pool.stats().exits == {}


def test_job_options_are_checked_where_they_are_made() -> None:
    with pytest.raises(TypeError, match="language"):
        JobOptions(language=threading.Lock())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rotate_pages"):
        JobOptions(rotate_pages="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spellcheck must be a name of 64"):
        JobOptions(spellcheck="x" * 100_000)
    with pytest.raises(TypeError, match="exports"):
        JobOptions(exports="pdf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown export format"):
        JobOptions(exports=("tiff",))  # type: ignore[arg-type]
    options = JobOptions(exports=[ExportFormat.PDF, "hocr"])  # type: ignore[arg-type]
    assert options.exports == (ExportFormat.PDF, ExportFormat.HOCR)


@pytest.mark.parametrize("name", ["", "\0", "e ng", "eng\n"])
def test_what_cannot_name_a_language_is_refused_where_it_is_made(name: str) -> None:
    """Else Aspose read ``""`` as the engine's own language, and a worker refused the rest
    as an unknown one."""
    with pytest.raises(ValueError, match="language must be a name"):
        JobOptions(language=name)
    if name:  # "" turns the spell-check off
        with pytest.raises(ValueError, match="spellcheck must be a name"):
            JobOptions(spellcheck=name)
    assert JobOptions(language="eng+deu", spellcheck="").spellcheck == ""


@pytest.mark.parametrize(
    ("name", "error"),
    [("dict.png", "returned a dict"), ("unpicklable.png", "could not be sent")],
    ids=["a result that is not a Recognition", "an error that cannot be pickled"],
)
def test_what_an_engine_returns_that_cannot_be_carried_fails_its_job_alone(
    tmp_path: Path, name: str, error: str
) -> None:
    odd, good = make_inputs(tmp_path, [name, "good.png"])
    with fake_pool(workers=1, spares=0, engine=ODD) as pool:
        with pytest.raises(EngineError, match=error):
            pool.recognize(odd)
        assert pool.recognize(good).text == "good"
        assert pool.stats().exits == {}


def test_a_worker_writing_garbage_to_its_pipe_is_a_crash_its_job_pays_for(
    tmp_path: Path,
) -> None:
    odd, good = make_inputs(tmp_path, ["garble.png", "good.png"])
    with fake_pool(workers=1, spares=0, engine=ODD, retries=1) as pool:
        with pytest.raises(WorkerCrashed):
            pool.recognize(odd)
        assert pool.recognize(good).text == "good"
        stats = pool.stats()
    assert stats.exits == {"crash": 2}
    assert stats.quarantined == (odd,)
    assert stats.state is PoolState.RUNNING


def test_a_callback_raising_system_exit_ends_no_pool_thread(tmp_path: Path) -> None:
    first, second = make_inputs(tmp_path, ["first.png", "second.png"])
    reported: list[object] = []

    def leave(record: object) -> None:
        reported.append(record)
        sys.exit("a user's callback asked to exit")

    with fake_pool(workers=1, spares=0, on_worker_exit=leave, max_jobs_per_worker=1) as pool:
        future = pool.submit(first)
        future.add_done_callback(leave)
        assert future.result().text == "first"
        assert pool.recognize(second).text == "second"
        wait_until(lambda: len(reported) >= 2, 10, "a worker's exit reported too")
        assert pool.stats().state is PoolState.RUNNING


@pytest.mark.slow
def test_cancel_with_kill_stops_a_job_deaf_to_signals_within_its_grace(tmp_path: Path) -> None:
    (hang,) = make_inputs(tmp_path, ["x-hang.png"])
    with fake_pool(workers=1, spares=0, job_timeout=None) as pool:
        future = pool.submit(hang)
        wait_until(lambda: pool.stats().workers[0].state.value == "busy", 10, "the job")
        assert pool.cancel(future, kill=True)
        # the supervisor slept with no deadline: only a wake lets it see the grace period
        # end and SIGKILL the worker (before, this waited for the next unrelated event)
        assert isinstance(future.exception(timeout=20), JobCancelled)
        assert pool.stats().exits == {"cancelled": 1}


@pytest.mark.slow
def test_jobs_running_when_the_fork_server_dies_are_queued_again_untried(
    tmp_path: Path,
) -> None:
    inputs = make_inputs(tmp_path, ["a.png", "b.png"])
    with fake_pool(workers=2, spares=0, retries=0, engine_options={"delay": 2.0}) as pool:
        futures: list[Future[OcrResult]] = [pool.submit_result(path) for path in inputs]
        wait_until(lambda: _both_busy(pool.stats().workers), 10, "both jobs running")
        server = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        os.kill(server, 9)
        results = [future.result(timeout=60) for future in futures]
        stats = pool.stats()
    # with retries=0 one attempt charged would have failed them: none was
    assert [r.text for r in results] == ["a", "b"]
    assert all(r.ok and not any(a.outcome == "WorkerCrashed" for a in r.attempts) for r in results)
    assert stats.retries == 0 and stats.exits.get("killed", 0) >= 2


def test_a_fork_short_of_descriptors_waits_and_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = supervisor_module.WorkerHandle
    failures = iter([True] * 4)

    def handle(*args: Any, **kwargs: Any) -> Any:
        if next(failures, False):
            raise OSError(errno.EMFILE, "Too many open files")
        return real(*args, **kwargs)

    monkeypatch.setattr(supervisor_module, "WorkerHandle", handle)
    (path,) = make_inputs(tmp_path, ["late.png"])
    with fake_pool(workers=1, spares=0, max_start_failures=2) as pool:
        assert pool.recognize(path).text == "late"
        assert pool.stats().state is PoolState.RUNNING


def _short_of_descriptors_from(
    monkeypatch: pytest.MonkeyPatch, forks_that_work: int
) -> threading.Event:
    """Forks fail with EMFILE after the first ``forks_that_work``, until the returned
    event is set."""
    real = supervisor_module.WorkerHandle
    forks = iter(range(forks_that_work))
    passed = threading.Event()

    def handle(*args: Any, **kwargs: Any) -> Any:
        if next(forks, None) is None and not passed.is_set():
            raise OSError(errno.EMFILE, "Too many open files")
        return real(*args, **kwargs)

    monkeypatch.setattr(supervisor_module, "WorkerHandle", handle)
    return passed


def test_a_pool_that_can_never_fork_a_worker_breaks_after_start_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _short_of_descriptors_from(monkeypatch, forks_that_work=0)
    with pytest.raises(EngineStartError, match="ulimit -n") as raised:
        fake_pool(workers=2, spares=0, start_timeout=0.5)
    assert "Too many open files" in str(raised.value)
    assert raised.value.attempts >= 2


def test_a_fork_short_of_descriptors_is_retried_while_another_worker_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = make_inputs(tmp_path, ["a.png", "b.png"])
    with fake_pool(workers=2, spares=0, start_timeout=0.4, max_jobs_per_worker=None) as pool:
        # short only once both are warm: a start slower than start_timeout on a loaded
        # machine would otherwise take a fork the test counts on
        passed = _short_of_descriptors_from(monkeypatch, forks_that_work=0)
        os.kill(pool.stats().workers[0].pid, 9)
        wait_until(lambda: len(pool.stats().workers) == 1, 10, "the killed worker gone")
        deadline = time.monotonic() + 2.0  # five start_timeouts without a fork
        while time.monotonic() < deadline:
            assert pool.recognize(inputs[0]).text == "a"
        assert pool.stats().state is PoolState.RUNNING
        passed.set()
        wait_until(lambda: len(pool.stats().workers) == 2, 10, "the slot filled again")
        assert pool.recognize(inputs[1]).text == "b"


def test_a_running_pool_left_with_no_worker_it_can_fork_breaks_after_start_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = make_inputs(tmp_path, ["a.png", "b.png"])
    _short_of_descriptors_from(monkeypatch, forks_that_work=1)
    with fake_pool(workers=1, spares=0, start_timeout=0.3, max_jobs_per_worker=1) as pool:
        assert pool.recognize(inputs[0]).text == "a"  # its worker retires; none can follow
        late = pool.submit_result(inputs[1])
        assert isinstance(late.result(timeout=30).error, EngineStartError)
        assert pool.stats().state is PoolState.BROKEN


@pytest.mark.timeout(60)
def test_forks_that_work_but_never_serve_do_not_reset_the_shortage_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fork refused mid-request kills the fork server and the workers it had forked, so
    forks that worked alternated with refused ones for ever: each success restarted the
    clock, and ``OcrPool()`` hung."""
    real = supervisor_module.WorkerHandle
    forks = itertools.count()

    def handle(*args: Any, **kwargs: Any) -> Any:
        if next(forks) % 2:
            raise OSError(errno.EMFILE, "Too many open files")
        worker = real(*args, **kwargs)
        os.kill(worker.pid, 9)  # taken down with the fork server, before it is warm
        return worker

    monkeypatch.setattr(supervisor_module, "WorkerHandle", handle)
    with pytest.raises(EngineStartError, match="ulimit -n"):
        fake_pool(workers=2, spares=0, start_timeout=0.5)


def test_a_worker_sampled_while_the_caller_is_out_of_descriptors_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psutil reads /proc with a new descriptor: out of them, the hard limit's RSS sample
    raised a bare OSError that ended the supervisor thread, and the pool with it."""
    (path,) = make_inputs(tmp_path, ["sampled.png"])
    with fake_pool(
        workers=1,
        spares=0,
        hard_rss_mb=4096,
        rss_sample_interval=0.01,
        engine_options={"delay": 0.3},
    ) as pool:

        def refuse(self: psutil.Process) -> None:
            raise OSError(errno.EMFILE, "Too many open files")

        monkeypatch.setattr(psutil.Process, "memory_info", refuse)
        assert pool.recognize(path).text == "sampled"
        monkeypatch.undo()
        assert pool.stats().state is PoolState.RUNNING


ROOT = Path(__file__).resolve().parents[1]
SPARE_SHORT_SCRIPT = """
import json, logging, os, resource, sys
from ocrpool import OcrPool, PoolConfig


def main(image):
    config = PoolConfig(
        engine="fake", workers=1, spares=1, max_jobs_per_worker=2, recycle_jitter=0.0,
        start_timeout=30, engine_options={"delay": 0.05},
    )
    with OcrPool(config=config) as pool:
        # room for what the pool holds now and for one start (7), not one more: the
        # spare, started beside the serving worker, never fits; a replacement does, once
        # the worker it replaces has left
        open_now = len(os.listdir("/proc/self/fd")) - 1
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 6, hard))
        texts = [pool.recognize(image).text for _ in range(8)]
        stats = pool.stats()
    print(json.dumps({"texts": texts, "exits": dict(stats.exits), "state": stats.state.value}))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main(sys.argv[1])
"""


def test_a_spare_the_descriptors_do_not_fit_costs_no_serving_worker(tmp_path: Path) -> None:
    """A spare's fork refused once the fork server had taken it ended the server, and the
    worker serving with it: each start now checks that its descriptors are free first."""
    (image,) = make_inputs(tmp_path, ["spare.png"])
    script = tmp_path / "spare_short.py"
    script.write_text(SPARE_SHORT_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), image],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["texts"] == ["spare"] * 8 and outcome["state"] == "running"
    assert "could not start a worker process" in done.stderr  # the spare was refused
    assert outcome["exits"].get("killed", 0) == 0, outcome["exits"]


def _both_busy(workers: tuple[WorkerInfo, ...]) -> bool:
    return len(workers) == 2 and all(w.state is WorkerState.BUSY for w in workers)
