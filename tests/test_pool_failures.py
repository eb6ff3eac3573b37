"""Every way a native library fails costs at most its own job, and the pool goes on."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from multiprocessing import forkserver, resource_tracker
from pathlib import Path

import psutil
import pytest
from fakes import fake_pool, make_inputs, worker_processes

from ocrpool import (
    EngineConfigError,
    EngineStartError,
    ExitCause,
    InvalidInput,
    JobCancelled,
    JobTimeout,
    MemoryLimitExceeded,
    WorkerCrashed,
    WorkerExit,
)
from ocrpool.engines import resolve_engine
from ocrpool.pool.handle import WorkerHandle
from ocrpool.stats import WorkerState
from tests.support.served import wait_until


def test_crash_is_retried_on_fresh_workers_then_quarantined(tmp_path: Path) -> None:
    crash, good = make_inputs(tmp_path, ["crash-me.png", "fine.png"])
    with fake_pool(workers=1, spares=0, retries=2) as pool:
        with pytest.raises(WorkerCrashed) as caught:
            pool.recognize(crash)
        assert pool.recognize(good).text == "fine"
        stats = pool.stats()
    assert caught.value.signal == "SIGSEGV"
    assert "Segmentation fault" in caught.value.stderr_tail
    assert stats.exits == {"crash": 3}
    assert stats.retries == 2
    assert stats.quarantined == (crash,)


def test_abort_is_reported_with_its_signal(tmp_path: Path) -> None:
    (abort,) = make_inputs(tmp_path, ["abort.png"])
    with fake_pool(workers=1, spares=0, retries=0) as pool:
        result = next(pool.imap([abort]))
    assert isinstance(result.error, WorkerCrashed)
    assert result.error.signal == "SIGABRT"
    assert [a.outcome for a in result.attempts] == ["WorkerCrashed"]


@pytest.mark.slow
def test_poison_inputs_among_good_ones_cost_only_themselves(tmp_path: Path) -> None:
    names = [f"good-{i}.png" for i in range(40)]
    names[5:5] = ["crash.png"]
    names[20:20] = ["abort.png"]
    names[30:30] = ["hang.png"]
    paths = make_inputs(tmp_path, names)
    with fake_pool(workers=2, spares=1, retries=1, job_timeout=2) as pool:
        results = {r.input: r for r in pool.imap(paths, ordered=False)}
        stats = pool.stats()
    failed = {Path(p).name: type(r.error) for p, r in results.items() if not r.ok}
    assert failed == {
        "crash.png": WorkerCrashed,
        "abort.png": WorkerCrashed,
        "hang.png": JobTimeout,
    }
    assert sum(r.ok for r in results.values()) == 40
    assert stats.exits["crash"] == 4
    assert stats.exits["timeout"] == 1
    assert sorted(stats.quarantined) == sorted(
        str(tmp_path / n) for n in ("abort.png", "crash.png")
    )


def test_invalid_input_is_not_retried(tmp_path: Path) -> None:
    with fake_pool(workers=1, spares=0, retries=3) as pool:
        with pytest.raises(InvalidInput, match=r"missing\.png"):
            pool.recognize(str(tmp_path / "missing.png"))
        assert pool.stats().exits == {}


@pytest.mark.slow
def test_hang_with_signals_masked_is_killed_at_its_deadline(tmp_path: Path) -> None:
    hang, good = make_inputs(tmp_path, ["hang.png", "after.png"])
    exits: list[WorkerExit] = []
    with fake_pool(workers=1, spares=0, job_timeout=1, on_worker_exit=exits.append) as pool:
        with pytest.raises(JobTimeout):
            pool.recognize(hang)
        assert pool.recognize(good).ok
    assert (exits[0].cause, exits[0].exitcode) == (ExitCause.TIMEOUT, -signal.SIGKILL)


def test_a_path_no_system_opens_fails_alone_while_its_worker_holds_a_hung_job(
    tmp_path: Path,
) -> None:
    """Its message would not fit the busy worker's pipe: sent, it blocked the pool."""
    hang, good = make_inputs(tmp_path, ["hang.png", "after.png"])
    long_path = "/" + "x" * 300_000
    with fake_pool(workers=1, spares=0, job_timeout=3) as pool:
        for _ in range(3):  # fast jobs: the worker is given its next job before it is done
            assert pool.recognize(good).ok
        hung = pool.submit(hang)
        wait_until(lambda: pool.stats().workers[0].state is WorkerState.BUSY, 10, "the hang")
        with pytest.raises(InvalidInput, match="path too long") as caught:
            pool.submit(long_path).result(timeout=5)
        assert caught.value.input == long_path
        assert pool.submit_result(long_path, label="long").result().error is not None
        assert not next(pool.imap([long_path])).ok
        nul = next(pool.imap([f"{good}\0.png", good]))  # one input, never the rest
        assert isinstance(nul.error, InvalidInput) and "NUL" in nul.error.message
        with pytest.raises(JobTimeout):
            hung.result(timeout=30)
        assert pool.recognize(good).ok


_STOPPED_CALLER = """
import sys
from ocrpool import OcrPool
options = {"delay": 0.4}
with OcrPool(2, engine="fake", engine_options=options, job_timeout=1, spares=0) as pool:
    jobs = [pool.submit(sys.argv[1]) for _ in range(16)]
    print("submitted", flush=True)
    texts = {job.result(timeout=60).text for job in jobs}
    print(texts, pool.stats().exits, flush=True)
"""


def test_a_caller_stopped_past_a_deadline_reads_the_answers_sent_in_time(tmp_path: Path) -> None:
    """Ctrl-Z, then ``fg``: jobs ended while the caller's process was stopped; waking past
    their deadlines, the supervisor reads their answers instead of killing the workers."""
    (path,) = make_inputs(tmp_path, ["scan.png"])
    caller = subprocess.Popen(
        [sys.executable, "-c", _STOPPED_CALLER, path], stdout=subprocess.PIPE, text=True
    )
    assert caller.stdout is not None
    assert caller.stdout.readline() == "submitted\n"
    for _ in range(3):
        time.sleep(0.5)
        caller.send_signal(signal.SIGSTOP)
        time.sleep(2.0)  # a job takes 0.4 s: its 1 s deadline passes while the caller stops
        caller.send_signal(signal.SIGCONT)
    assert caller.stdout.readline() == "{'scan'} {}\n"  # no worker exit: no timeout
    assert caller.wait(30) == 0


def test_a_hard_memory_limit_below_a_warm_engine_fails_the_start_not_the_inputs() -> None:
    """Every worker was killed in its first job, and each input blamed and quarantined
    for memory it never used."""
    with pytest.raises(EngineStartError, match="past the hard memory limit of 10 MB"):
        fake_pool(workers=1, spares=0, max_rss_mb=5, hard_rss_mb=10, max_start_failures=2)


def test_timeout_attaches_the_workers_python_stack(tmp_path: Path) -> None:
    (slow,) = make_inputs(tmp_path, ["slow.png"])
    pool = fake_pool(workers=1, spares=0, job_timeout=1, engine_options={"delay": 60})
    with pool, pytest.raises(JobTimeout) as caught:
        pool.recognize(slow)
    assert "in recognize" in caught.value.stderr_tail
    assert "fake.py" in caught.value.stderr_tail


@pytest.mark.slow
def test_hard_rss_limit_kills_a_ballooning_job_during_the_job(tmp_path: Path) -> None:
    balloon, good = make_inputs(tmp_path, ["balloon.png", "small.png"])
    with fake_pool(
        workers=1,
        spares=0,
        retries=1,
        max_rss_mb=100,
        hard_rss_mb=200,
        engine_options={"balloon_mb": 300, "delay": 30},
        job_timeout=120,
    ) as pool:
        result = next(pool.imap([balloon]))
        stats = pool.stats()
    assert isinstance(result.error, MemoryLimitExceeded)
    assert result.error.rss_mb >= 200
    # killed while the job still ran (it sleeps 30 s otherwise), on a fresh worker each time
    assert [a.outcome for a in result.attempts] == ["MemoryLimitExceeded"] * 2
    assert all(a.elapsed_s < 30 for a in result.attempts)
    assert len({a.worker_pid for a in result.attempts}) == 2
    assert stats.exits == {"hard_rss": 2}
    assert stats.quarantined == (balloon,)
    del good


def test_start_failure_raises_engine_start_error_after_bounded_attempts() -> None:
    with pytest.raises(EngineStartError) as caught:
        fake_pool(workers=2, engine_options={"fail_start": True}, max_start_failures=2)
    assert caught.value.attempts == 2
    assert "start failed as asked" in str(caught.value)
    assert "ocrpool doctor" in str(caught.value)


@pytest.mark.parametrize("how", ["removed", "not enterable"])
def test_a_current_folder_no_worker_can_start_in_breaks_the_pool_at_once_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """multiprocessing makes each worker enter the caller's current folder: one removed (a
    cleaned-up build folder) failed every start with a bare ``FileNotFoundError``, one the
    user may not enter (``sudo -u ocr`` from ``/root``) with a worker's exit code 1; each
    retried three times and blamed on the engine, pointing at ``ocrpool doctor``."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    if how == "removed":
        here.rmdir()
    else:  # root enters any folder: only os.access says no
        access = os.access
        monkeypatch.setattr(
            os, "access", lambda path, mode: path != str(here) and access(path, mode)
        )
    says = "was removed" if how == "removed" else f"may not enter the current folder {here}"
    with pytest.raises(EngineStartError, match=f"no worker can start: .*{says}") as caught:
        fake_pool(workers=1)
    assert caught.value.attempts == 1
    assert "ocrpool doctor" not in str(caught.value)


def test_start_abort_is_a_start_failure_with_the_stderr_tail() -> None:
    with pytest.raises(EngineStartError) as caught:
        fake_pool(workers=1, engine_options={"fail_start": "abort"}, max_start_failures=1)
    assert "SIGABRT" in str(caught.value)
    assert "Fatal Python error: Aborted" in caught.value.stderr_tail


def test_an_option_the_engine_does_not_take_is_refused_before_any_worker_starts() -> None:
    started: list[WorkerExit] = []
    with pytest.raises(ValueError, match=r"no option 'no_such_option'; its options: .*delay"):
        fake_pool(engine_options={"no_such_option": 1}, on_worker_exit=started.append)
    assert started == []


@pytest.mark.parametrize(
    ("options", "option", "says"),
    [
        ({"page_fault": "nope"}, "page_fault", "page_fault must be one of"),
        ({"delay": "soon"}, "delay", "delay must be a finite number of 0 or more, not 'soon'"),
        # not an AttributeError from the pool's constructor, which reads the exports
        ({"exports": ["pdf", 5]}, "exports", "an export format is a name, not int 5"),
    ],
)
def test_an_option_value_the_engine_refuses_breaks_the_pool_at_the_first_start(
    options: dict[str, object], option: str, says: str
) -> None:
    """No retry can start it, so none is made (three starts with back-off before), and the
    error says what to fix, not to run ``ocrpool doctor``."""
    exits: list[WorkerExit] = []
    with pytest.raises(EngineConfigError) as caught:
        fake_pool(
            workers=1, engine_options=options, max_start_failures=3, on_worker_exit=exits.append
        )
    assert caught.value.option == option
    assert caught.value.message.startswith(f"the 'fake' engine refused its options: {says}")
    assert "doctor" not in caught.value.message
    assert [exit.cause for exit in exits] == [ExitCause.START_FAILED]


def test_options_refused_after_a_warm_start_are_retried_as_any_failed_start(
    tmp_path: Path,
) -> None:
    """Once an engine started with them, a refusal means the machine changed (a file an
    option names vanished): the replacement is retried, and the pool serves again once the
    file is back, instead of breaking as it does at the first start."""
    refusing = tmp_path / "refusing"
    exits: list[WorkerExit] = []
    settings = {"fail_start": "refuse", "fail_start_while": str(refusing)}
    inputs = make_inputs(tmp_path, ["a.png", "b.png"])
    with fake_pool(
        workers=1,
        spares=0,
        max_jobs_per_worker=1,
        recycle_jitter=0.0,
        engine_options=settings,
        max_start_failures=5,  # far more than the retries before the file is back
        on_worker_exit=exits.append,
    ) as pool:
        refusing.touch()
        assert pool.recognize(inputs[0]).ok  # its worker retires; the replacement refuses
        wait_until(lambda: any(e.cause is ExitCause.START_FAILED for e in exits), 30, "refused")
        refusing.unlink()
        assert pool.recognize(inputs[1]).ok
    assert [e.cause for e in exits].count(ExitCause.START_FAILED) >= 1


def test_unknown_engine_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        fake_pool(engine="no-such-engine")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no_such_module.sub:Engine", "cannot import"),
        ("ocrpool..x:Engine", "cannot import"),
        ("ocrpool.no_such_module:Engine", "cannot import"),
        (".x:Engine", "is relative"),
    ],
)
def test_an_engine_module_that_does_not_import_is_a_value_error(spec: str, says: str) -> None:
    """It was the ``ModuleNotFoundError`` (or ``TypeError``) itself: a traceback and exit
    code 1 from ``ocrpool run --engine``, where a bad engine name is a usage error."""
    with pytest.raises(ValueError, match=f"engine '{re.escape(spec)}': .*{says}"):
        fake_pool(engine=spec)


def test_an_engine_module_that_fails_to_import_keeps_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's name is right; what the module imports is missing: that is a broken
    installation to report with its traceback, not a usage error about the name."""
    (tmp_path / "plugin_needing_more.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        resolve_engine("plugin_needing_more:Engine")


def test_worker_killed_while_starting_is_replaced_not_a_start_failure() -> None:
    killed: list[int] = []

    def kill_first_starting_worker() -> None:
        while not killed:
            for worker in worker_processes():
                worker.kill()
                killed.append(worker.pid)
                return

    killer = threading.Thread(target=kill_first_starting_worker)
    killer.start()
    with fake_pool(workers=1, spares=0, engine_options={"start_delay": 1.0}) as pool:
        killer.join()
        stats = pool.stats()
    assert stats.exits == {"killed": 1}
    assert stats.state.value == "running"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_worker_terminated_from_outside_while_starting_is_replaced_not_a_start_failure(
    signum: signal.Signals,
) -> None:
    """``kill PID`` (SIGTERM) or a hang-up of a starting worker is an outside kill, as a
    SIGKILL is: no engine fails with it. Judged a failed start, ``max_start_failures`` of
    them in a row (one here) broke the pool with ``EngineStartError``."""
    signalled: list[int] = []

    def terminate_first_starting_worker() -> None:
        wait_until(lambda: bool(worker_processes()), 30, "the first worker")
        worker = worker_processes()[0]
        threading.Event().wait(0.3)  # inside its 1 s start, its signal handlers set
        worker.send_signal(signum)
        signalled.append(worker.pid)

    killer = threading.Thread(target=terminate_first_starting_worker)
    killer.start()
    with fake_pool(
        workers=1, spares=0, max_start_failures=1, engine_options={"start_delay": 1.0}
    ) as pool:
        killer.join()
        assert pool.recognize(b"image").ok
        stats = pool.stats()
    assert signalled and stats.exits == {"killed": 1}
    assert stats.state.value == "running"


def test_the_constructor_returns_a_warm_pool_when_starts_cut_short_outlast_its_bounds(
    tmp_path: Path,
) -> None:
    """A start killed from outside is not a failed start, so ``start_timeout`` x
    ``max_start_failures`` (5 s here) does not bound the wait: the first worker is killed
    2.5 s into its 3 s start, and its replacement is warm at about 5.7 s. The bound
    returned the pool still STARTING, as if it were warm."""
    killed: list[int] = []

    def kill_the_first_worker_late_in_its_warm_up() -> None:
        wait_until(lambda: bool(worker_processes()), 30, "the first worker")
        first = worker_processes()[0]
        threading.Event().wait(2.5)
        first.kill()
        killed.append(first.pid)

    killer = threading.Thread(target=kill_the_first_worker_late_in_its_warm_up)
    killer.start()
    (image,) = make_inputs(tmp_path, ["a.png"])
    slow = {"start_delay": 3.0}
    with fake_pool(
        workers=1, spares=0, engine_options=slow, start_timeout=5.0, max_start_failures=1
    ) as pool:
        state = pool.stats().state
        killer.join()
        assert pool.recognize(image).ok
        stats = pool.stats()
    assert state.value == "running", "the constructor returned before a worker was warm"
    assert killed and stats.exits == {"killed": 1}


def test_worker_killed_before_it_reads_its_start_data_is_replaced_not_a_start_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kill between the fork server's fork and the child reading what to run makes
    multiprocessing raise BrokenPipeError in the supervisor; the engine never ran."""
    connect = forkserver.connect_to_new_process
    killed: list[int] = []

    def connect_then_kill_the_child(fds: list[int]) -> tuple[int, int]:
        ends = connect(fds)
        if not killed:
            wait_until(lambda: bool(worker_processes()), 10, "the forked child")
            (child,) = worker_processes()
            child.kill()
            child.wait()
            killed.append(child.pid)
        return ends

    monkeypatch.setattr(forkserver, "connect_to_new_process", connect_then_kill_the_child)
    exits: list[WorkerExit] = []
    with fake_pool(workers=1, spares=0, max_start_failures=1, on_worker_exit=exits.append) as pool:
        stats = pool.stats()
        wait_until(lambda: bool(exits), 10, "the lost worker's exit record")
    assert killed and stats.exits == {"killed": 1}
    assert stats.state.value == "running"
    assert [(e.pid, e.cause, e.jobs) for e in exits[:1]] == [(None, ExitCause.KILLED, 0)]
    assert str(exits[0]).startswith("a worker lost while forked exited: killed")


def test_a_fork_server_killed_before_it_told_the_childs_pid_is_not_a_start_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork server took the request and died before writing the child's pid (SIGKILL
    of the fork server mid-fork): multiprocessing raises EOFError in the supervisor."""
    connect = forkserver.connect_to_new_process
    unread: list[int] = []

    def the_fork_server_dies_first(fds: list[int]) -> tuple[int, int]:
        if unread:
            return connect(fds)
        status_r, status_w = os.pipe()
        data_r, data_w = os.pipe()
        os.close(status_w)  # no pid will ever come
        unread.append(data_r)  # where the dead server would have read what to run
        return status_r, data_w

    monkeypatch.setattr(forkserver, "connect_to_new_process", the_fork_server_dies_first)
    (image,) = make_inputs(tmp_path, ["a.png"])
    exits: list[WorkerExit] = []
    try:
        settings = dict(workers=1, spares=0, max_start_failures=1, on_worker_exit=exits.append)
        with fake_pool(**settings) as pool:
            assert pool.recognize(image).ok  # served by the next worker
            stats = pool.stats()
    finally:
        os.close(unread[0])
    assert stats.state.value == "running"
    assert stats.exits == {"killed": 1}
    assert [(e.pid, e.cause) for e in exits[:1]] == [(None, ExitCause.KILLED)]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:resource_tracker:UserWarning")
def test_sigkills_of_any_child_fork_server_included_never_break_the_pool(
    tmp_path: Path,
) -> None:
    """Several SIGKILLs a second at random children of the pool (workers at every step,
    the fork server, the resource tracker) while it recycles every 5 jobs: each costs at
    most the job its worker held, never the pool (this once broke it as a failed start)."""
    paths = make_inputs(tmp_path, [f"j{i}.png" for i in range(300)])
    rng = random.Random(3)  # a seed that broke the pool before the fix
    me = psutil.Process()
    done = threading.Event()
    kills = 0

    def chaos() -> None:
        nonlocal kills
        while not done.wait(rng.uniform(0.02, 0.3)):
            children = me.children(recursive=True)
            if children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(rng.choice(children).pid, signal.SIGKILL)
                    kills += 1

    killer = threading.Thread(target=chaos)
    settings = dict(workers=2, max_jobs_per_worker=5, retries=3, engine_options={"delay": 0.03})
    with fake_pool(**settings) as pool:
        killer.start()
        try:
            errors = Counter(type(f.exception(timeout=120)) for f in map(pool.submit, paths))
        finally:
            done.set()
            killer.join()
        stats = pool.stats()
    resource_tracker.ensure_running()  # its "died" warning here, not in the next test
    assert kills >= 10
    assert stats.state.value == "running" and stats.completed + stats.failed == 300
    assert set(errors) <= {type(None), WorkerCrashed}  # lost with its worker, if at all


@pytest.mark.slow
def test_sigkill_at_any_lease_state_ends_every_job_exactly_once(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"j{i}.png" for i in range(200)])
    kills = 0
    done = threading.Event()

    def chaos() -> None:
        nonlocal kills
        rounds = 0
        while kills < 8 and not done.wait(0.1 + 0.02 * (rounds % 5)):
            rounds += 1
            workers = worker_processes()
            if workers:
                workers[rounds % len(workers)].kill()
                kills += 1

    with fake_pool(
        workers=2, spares=1, retries=20, max_jobs_per_worker=25, engine_options={"delay": 0.01}
    ) as pool:
        monkey = threading.Thread(target=chaos)
        monkey.start()
        results = list(pool.imap(paths, ordered=False))
        done.set()
        monkey.join()
    assert Counter(r.input for r in results) == Counter(paths)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert kills >= 3
    crashed_attempts = sum(a.outcome == "WorkerCrashed" for r in results for a in r.attempts)
    assert crashed_attempts <= kills


def test_a_job_waiting_behind_a_crash_is_not_blamed(tmp_path: Path) -> None:
    warm, crash, *good = make_inputs(tmp_path, ["warm.png", "crash.png", "n-1.png", "n-2.png"])
    with fake_pool(workers=1, spares=0, retries=0, prefetch_below_s=10) as pool:
        pool.recognize(warm)  # a short job: the worker now gets jobs sent ahead
        futures = [pool.submit(p) for p in (crash, *good)]
        with pytest.raises(WorkerCrashed):
            futures[0].result()
        results = [f.result() for f in futures[1:]]
    assert [r.text for r in results] == ["n-1", "n-2"]
    assert [[a.outcome for a in r.attempts] for r in results] == [["ok"], ["ok"]]


@pytest.mark.slow
def test_a_worker_frozen_before_it_acknowledges_its_job_is_stopped_in_time(
    tmp_path: Path,
) -> None:
    """job_timeout also bounds a job the worker never acknowledges (SIGSTOPped before it
    read it): the worker is stopped and the job, never started, runs on a fresh one."""
    (image,) = make_inputs(tmp_path, ["page.png"])
    with fake_pool(workers=1, spares=0, job_timeout=1.0) as pool:
        (frozen,) = [w.pid for w in pool.stats().workers]
        os.kill(frozen, signal.SIGSTOP)
        result = pool.submit(image).result(timeout=60)
        exits = pool.stats().exits
    assert result.ok and result.worker_pid != frozen
    assert exits.get(ExitCause.TIMEOUT.value) == 1
    assert [a.outcome for a in result.attempts] == ["ok"]  # the frozen try cost no attempt


@pytest.mark.slow
def test_a_frozen_worker_never_blocks_the_supervisor_on_a_large_input(tmp_path: Path) -> None:
    """Bytes larger than a pipe holds, sent to a SIGSTOPped worker, once blocked the
    supervisor thread in ``send`` for good (so no timeout could fire): they go through a
    file now, and the job runs on the replacement, unblamed."""
    (image,) = make_inputs(tmp_path, ["page.png"])
    data = Path(image).read_bytes() + os.urandom(2 * 1024 * 1024)  # the fake reads no pixels
    with fake_pool(workers=1, spares=0, job_timeout=1.0) as pool:
        (frozen,) = [w.pid for w in pool.stats().workers]
        os.kill(frozen, signal.SIGSTOP)
        result = pool.submit(data, label="big").result(timeout=60)
        second = pool.submit(data, label="again").result(timeout=60)
    assert result.ok and result.worker_pid != frozen
    assert result.text == second.text == f"{len(data)} bytes"
    assert [a.outcome for a in result.attempts] == ["ok"]


@pytest.mark.slow
def test_large_bytes_that_cannot_be_spilled_wait_for_an_idle_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no file to go through (a full disk), large bytes prefetched to a busy worker
    would wait in its pipe behind a job that may never end, the supervisor blocked in
    ``send`` under its lock: they go to an idle worker instead."""
    monkeypatch.setattr(WorkerHandle, "_spill", lambda *_: None)
    short = make_inputs(tmp_path, [f"s{i}.png" for i in range(3)])
    (hang,) = make_inputs(tmp_path, ["x-hang.png"])
    data = b"fake image" + os.urandom(2 * 1024 * 1024)
    with fake_pool(workers=1, spares=0, job_timeout=2.0, prefetch_below_s=10.0) as pool:
        for path in short:  # short jobs: the worker's next job is prefetched
            pool.recognize(path)
        hung = pool.submit_result(hang)
        wait_until(lambda: pool.stats().workers[0].state is WorkerState.BUSY, 10, "the hang")
        big = pool.submit(data, label="big")
        assert isinstance(hung.result(timeout=30).error, JobTimeout)  # the deadline fired
        assert big.result(timeout=30).text == f"{len(data)} bytes"


@pytest.mark.timeout(60)
def test_without_a_job_timeout_no_job_waits_behind_a_hang_in_a_workers_pipe(
    tmp_path: Path,
) -> None:
    """A job sent ahead to a worker cannot be taken back: behind a job that hangs with no
    deadline it would wait for ever while the other worker idles. Without a
    ``job_timeout`` no job is sent ahead; it waits in the queue for a free worker."""
    warm, slow, after = make_inputs(tmp_path, ["warm.png", "slow.png", "after.png"])
    (hang,) = make_inputs(tmp_path, ["x-hang.png"])
    settings = dict(workers=2, spares=0, job_timeout=None, prefetch_below_s=10.0)
    with fake_pool(**settings, engine_options={"delay": 0.3}) as pool:
        assert pool.recognize(warm).ok  # the first worker's last job would make it prefetch
        hung = pool.submit_result(hang)  # to the first worker, idle
        wait_until(lambda: pool.stats().workers[0].state is WorkerState.BUSY, 10, "the hang")
        pool.submit(slow)  # to the second
        waiting = pool.submit(after)  # no worker idle
        try:
            assert waiting.result(timeout=20).text == "after"
        finally:
            pool.cancel(hung, kill=True)
        assert isinstance(hung.result(timeout=20).error, JobCancelled)


def test_large_bytes_a_dead_worker_never_read_leave_no_file_behind(tmp_path: Path) -> None:
    """Bytes prefetched through a file to a worker that dies before reading them: the
    file goes with the worker's leases, so a job then cancelled (or failed) does not
    leave it in the pool's folder until the pool closes."""
    warm, slow = make_inputs(tmp_path, ["warm.png", "slow.png"])
    data = Path(warm).read_bytes() + os.urandom(2 * 1024 * 1024)
    settings = dict(workers=1, spares=0, prefetch_below_s=10.0)
    options = {"delay": 0.5, "start_delay": 1.0}  # the replacement takes a second to start
    with fake_pool(**settings, engine_options=options) as pool:
        folder = Path(pool._supervisor.folder)
        assert pool.recognize(warm).ok  # its time makes the next job prefetched
        running = pool.submit(slow)
        big = pool.submit(data, label="big")
        wait_until(lambda: list(folder.glob("job-*.bin")), 10, "the spilled bytes")
        (worker,) = [w.pid for w in pool.stats().workers]
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: pool.stats().exits.get("killed") == 1, 10, "the kill")
        assert pool.cancel(big, kill=True)
        assert running.result(timeout=30).ok  # retried on the replacement
        assert list(folder.glob("job-*.bin")) == []


def test_a_prefetched_job_acknowledged_in_the_outcome_before_it_pays_for_its_crash(
    tmp_path: Path,
) -> None:
    """The worker starts a job that waited in its pipe right after the Outcome that
    acknowledges it: the supervisor counts it as started, so its crash costs it an
    attempt, once (were it taken for never started, it would run and crash again)."""
    warm, first, crash = make_inputs(tmp_path, ["warm.png", "first.png", "crash-next.png"])
    settings = dict(workers=1, spares=0, retries=0, prefetch_below_s=10.0)
    with fake_pool(**settings, engine_options={"delay": 0.3}) as pool:
        assert pool.recognize(warm).ok  # its time makes the next job prefetched
        futures = [pool.submit_result(first), pool.submit_result(crash)]
        results = [future.result() for future in futures]
        stats = pool.stats()
    assert results[0].ok
    assert isinstance(results[1].error, WorkerCrashed)
    assert [a.outcome for a in results[1].attempts] == ["WorkerCrashed"]
    assert stats.exits.get("crash") == 1


@pytest.mark.slow
def test_a_stopped_fork_server_is_killed_so_the_pool_goes_on(tmp_path: Path) -> None:
    """SIGSTOP the fork server: the next worker start would wait for it for ever, under
    the supervisor's lock; it is killed instead, and a new one forks the replacement."""
    paths = make_inputs(tmp_path, [f"p{i}.png" for i in range(6)])
    with fake_pool(workers=1, spares=0, max_jobs_per_worker=1) as pool:
        assert pool.recognize(paths[0]).text == "p0"
        server = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        os.kill(server, signal.SIGSTOP)
        try:
            results = [pool.submit(path) for path in paths[1:]]
            texts = [future.result(timeout=60).text for future in results]
        finally:
            with contextlib.suppress(OSError):
                os.kill(server, signal.SIGCONT)
        assert texts == [f"p{i}" for i in range(1, 6)]
        assert not psutil.pid_exists(server) or psutil.Process(server).status() == "zombie"
        assert pool.stats().state.value == "running"


@pytest.mark.slow
@pytest.mark.timeout(60)  # without the kill, the pool (and this test) waits for ever
@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_a_stopped_resource_tracker_is_killed_so_the_pool_goes_on(
    tmp_path: Path, start_method: str
) -> None:
    """SIGSTOP multiprocessing's resource tracker: every worker start writes a probe to
    its pipe, with either start method, so once the pipe is full (some 5,000 starts;
    filled here at once) the next start would wait for it for ever, under the
    supervisor's lock (``stats()`` too); it is killed instead, and the probe starts a new
    one."""
    paths = make_inputs(tmp_path, [f"p{i}.png" for i in range(4)])
    settings = dict(workers=1, spares=0, max_jobs_per_worker=1, start_method=start_method)
    with fake_pool(**settings) as pool:
        assert pool.recognize(paths[0]).text == "p0"
        tracker = resource_tracker._resource_tracker
        stopped = tracker._pid  # type: ignore[attr-defined]
        os.kill(stopped, signal.SIGSTOP)
        try:
            written = Counter[str]()

            def fill() -> None:  # what the probes of some 5,000 starts would leave
                with contextlib.suppress(OSError):
                    while True:
                        os.write(tracker._fd, b"PROBE:0:noop\n")  # type: ignore[attr-defined]
                        written["probes"] += 1

            threading.Thread(target=fill, daemon=True).start()
            last = -1
            while written["probes"] != last:  # until the pipe is full and writes block
                last = written["probes"]
                time.sleep(0.5)
            results = [pool.submit(path) for path in paths[1:]]
            texts = [future.result(timeout=30).text for future in results]
        finally:
            with contextlib.suppress(OSError):
                os.kill(stopped, signal.SIGCONT)
        assert texts == [f"p{i}" for i in range(1, 4)]
        assert pool.stats().state.value == "running"
