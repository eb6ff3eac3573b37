"""Futures behave as ``concurrent.futures`` says: running, cancel, wait, as_completed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from fakes import fake_pool, make_inputs

from ocrpool import ExitCause, JobCancelled, OcrResult


def _wait_until_running(future: Future[OcrResult]) -> None:
    deadline = time.monotonic() + 30
    while not future.running():
        assert time.monotonic() < deadline, "the job never left the queue"
        time.sleep(0.01)


@pytest.mark.slow
def test_cancel_succeeds_only_while_queued_and_waiters_are_told(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"p{i}.png" for i in range(4)] + ["crash-if-run.png"])
    called: list[Future[OcrResult]] = []
    with fake_pool(workers=1, spares=0, engine_options={"delay": 0.5}) as pool:
        futures = [pool.submit(path) for path in paths]
        futures[-1].add_done_callback(called.append)
        _wait_until_running(futures[0])
        assert not futures[0].cancel()  # running: as in the standard library
        assert futures[-1].cancel()  # queued
        assert called == [futures[-1]]
        done, _ = concurrent.futures.wait(futures[:4], timeout=60)
        assert done == set(futures[:4])
        completed = list(concurrent.futures.as_completed(futures, timeout=60))
    assert set(completed) == set(futures)
    assert [f.result().text for f in futures[:4]] == ["p0", "p1", "p2", "p3"]
    assert futures[-1].cancelled()
    assert "crash" not in pool.stats().exits  # the cancelled job was never sent


def test_cancel_refuses_what_is_no_future(tmp_path: Path) -> None:
    (path,) = make_inputs(tmp_path, ["scan.png"])
    with fake_pool(workers=1, spares=0) as pool:
        with pytest.raises(TypeError, match="expected a future of this pool, not str"):
            pool.cancel(path, kill=True)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="expected a future of this pool, not NoneType"):
            pool.cancel_all([pool.submit(path), None])  # type: ignore[list-item]
        assert pool.stats().state.value == "running"


def test_asyncio_sees_a_cancelled_job_as_cancelled(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, ["slow.png", "queued.png"])

    async def main() -> None:
        with fake_pool(workers=1, spares=0, engine_options={"delay": 0.5}) as pool:
            running, queued = (pool.submit(path) for path in paths)
            assert queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wrap_future(queued)
            assert (await asyncio.wrap_future(running)).text == "slow"

    asyncio.run(main())


def test_a_running_job_is_stopped_only_when_asked_explicitly(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, ["long.png", "next.png"])
    with fake_pool(workers=1, spares=1, engine_options={"delay": 30}) as pool:
        long, after = pool.submit(paths[0]), pool.submit(paths[1])
        _wait_until_running(long)
        assert not pool.cancel(long)  # without kill, a running job runs on
        assert pool.cancel(long, kill=True)
        with pytest.raises(JobCancelled):
            long.result(timeout=60)
        assert not pool.cancel(long, kill=True)  # already over
        pool.cancel(after, kill=True)
        with pytest.raises((JobCancelled, concurrent.futures.CancelledError)):
            after.result(timeout=60)
    assert pool.stats().exits.get(ExitCause.CANCELLED.value, 0) >= 1


def test_cancel_all_cancels_a_batch_whole_or_not_at_all(tmp_path: Path) -> None:
    """Without kill, one input started or done refuses the batch and leaves the rest
    queued; inputs all queued are all cancelled."""
    paths = make_inputs(tmp_path, ["done.png", "occupant.png", "queued.png", "later.png"])
    with fake_pool(workers=1, spares=0, engine_options={"delay": 30}) as pool:
        done = pool.submit(paths[0])
        _wait_until_running(done)
        assert pool.cancel(done, kill=True)  # over: it ran
        with pytest.raises(JobCancelled):
            done.result(timeout=60)
        occupant = pool.submit(paths[1])
        _wait_until_running(occupant)
        queued, later = pool.submit(paths[2]), pool.submit(paths[3])
        assert not pool.cancel_all([done, queued])
        assert not queued.cancelled()
        assert not pool.cancel_all([occupant, queued])
        assert not queued.cancelled()
        assert pool.cancel_all([queued, later])
        assert queued.cancelled() and later.cancelled()
        assert pool.cancel_all([occupant], kill=True)
        with pytest.raises(JobCancelled):
            occupant.result(timeout=60)


def test_cancel_all_takes_an_iterator_of_futures(tmp_path: Path) -> None:
    """It reads them twice (checked, then cancelled): an iterator was empty the second
    time, and ``True`` came back with nothing cancelled."""
    paths = make_inputs(tmp_path, ["occupant.png", "queued.png", "later.png", "last.png"])
    with fake_pool(workers=1, spares=0, engine_options={"delay": 30}) as pool:
        occupant = pool.submit(paths[0])
        _wait_until_running(occupant)
        queued = [pool.submit(path) for path in paths[1:]]
        assert pool.cancel_all(future for future in queued[:2])
        assert [future.cancelled() for future in queued] == [True, True, False]
        assert pool.cancel_all(iter(queued[2:]), kill=True)
        assert queued[2].cancelled()
        pool.shutdown(cancel_pending=True)


def test_kill_ends_a_job_waiting_to_be_retried(tmp_path: Path) -> None:
    """Its worker crashed and it waits in the queue for the replacement, which warms up
    for seconds: no worker holds it, yet it has started; kill ends it there."""
    [path] = make_inputs(tmp_path, ["crash.png"])
    options = {"start_delay": 5}
    with fake_pool(workers=1, spares=0, retries=1, engine_options=options) as pool:
        future = pool.submit(path)
        deadline = time.monotonic() + 30
        while pool.stats().retries < 1:
            assert time.monotonic() < deadline, "the job was never queued again"
            time.sleep(0.01)
        assert future.running() and not future.cancel()
        assert pool.cancel(future, kill=True)
        with pytest.raises(JobCancelled):
            future.result(timeout=60)
        assert pool.stats().queued == 0
    assert pool.stats().exits.get(ExitCause.CRASH.value) == 1


@pytest.mark.parametrize("wait", ["result", "exception", "recognize", "imap"])
def test_a_done_callback_that_waits_for_a_job_is_refused_not_left_to_freeze_the_pool(
    tmp_path: Path, wait: str
) -> None:
    """Done-callbacks run on the pool's own thread, which every job needs to finish: a
    wait there would stop the whole pool for ever. It raises at once instead, and the
    pool serves on; what cannot block (a poll, a done future) still answers."""
    first, second, third = make_inputs(tmp_path, ["a.png", "b.png", "c.png"])
    seen: list[object] = []

    def callback(done: Future[OcrResult]) -> None:
        later = pool.submit(second)
        seen.append(done.result().text)  # done: answers on any thread
        with pytest.raises(concurrent.futures.TimeoutError):
            later.result(timeout=0)  # a poll never blocks
        try:
            if wait == "result":
                later.result()
            elif wait == "exception":
                later.exception(timeout=5)
            elif wait == "recognize":
                pool.recognize(third)
            else:
                next(pool.imap([third]))
        except RuntimeError as error:
            seen.append(str(error))
        seen.append(later)

    with fake_pool(workers=1, spares=0, engine_options={"delay": 0.05}) as pool:
        pool.submit(first).add_done_callback(callback)
        assert pool.recognize(third).text == "c"  # the pool did not stop
        deadline = time.monotonic() + 30
        while len(seen) < 3:
            assert time.monotonic() < deadline, f"the callback never ended: {seen}"
            time.sleep(0.01)
    text, refusal, later = seen
    assert text == "a"
    assert str(refusal).startswith("a done-callback cannot wait for a job")
    assert isinstance(later, Future) and later.result(timeout=30).text == "b"


def test_a_done_callback_may_wait_for_a_job_of_another_pool(tmp_path: Path) -> None:
    """Another pool's thread finishes that job: the wait only holds up this pool."""
    first, second = make_inputs(tmp_path, ["a.png", "b.png"])
    seen: list[str] = []
    with (
        fake_pool(workers=1, spares=0) as pool,
        fake_pool(workers=1, spares=0) as other,
    ):
        done = pool.submit(first)
        done.add_done_callback(lambda _: seen.append(other.recognize(second).text))
        deadline = time.monotonic() + 30
        while not seen:
            assert time.monotonic() < deadline, "the callback never ended"
            time.sleep(0.01)
    assert seen == ["b"]
