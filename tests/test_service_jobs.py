"""The service's job table and error table, in-process (no server): bounds by TTL, count
and bytes with an injected clock; every error's status; no private field in a body."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest
from fakes import fake_pool, make_inputs

from ocrpool import OcrPool
from ocrpool.batch.records import InputFile, Record
from ocrpool.error_codes import http_status_of
from ocrpool.errors import (
    EngineError,
    EngineStartError,
    ImageTooLarge,
    InvalidInput,
    JobCancelled,
    JobTimeout,
    MemoryLimitExceeded,
    OcrPoolError,
    PagesFailed,
    PoolClosed,
    ResourceUnavailable,
    WorkerCrashed,
)
from ocrpool.pool.documents import DocumentFuture
from ocrpool.results import OcrResult, Page
from ocrpool.service.errors import JobNotFound, QueueFull
from ocrpool.service.jobs import JobState, JobTable
from ocrpool.service.outputs import Output, record_reply
from ocrpool.service.replies import Reply, error_reply, log_private


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _reply(done: Sequence[asyncio.Future[OcrResult]]) -> Reply:
    return Reply(410 if done[0].cancelled() else 200, b"x" * 30)


def _stop(futures: Sequence[Future[OcrResult]], kill: bool) -> bool:
    """``OcrPool.cancel_all`` without a pool: all queued futures, or none; no kill."""
    if any(future.running() or future.done() for future in futures):
        return False
    return all([future.cancel() for future in futures])


async def _finished(table: JobTable) -> str:
    future: Future[OcrResult] = Future()
    job = table.add([future], _reply, _stop)
    future.set_result(OcrResult(input="x"))
    await job.settled.wait()
    return job.id


def test_results_expire_and_are_bounded_in_count_and_bytes() -> None:
    async def scenario() -> None:
        clock = Clock()
        table = JobTable(ttl_s=10, max_results=2, max_bytes=1000, clock=clock)
        first, second, third = [await _finished(table) for _ in range(3)]
        with pytest.raises(JobNotFound):
            table.get(first)
        assert (table.stored, table.stored_bytes) == (2, 60)
        assert table.get(third).state is JobState.FINISHED
        clock.now = 10.5
        with pytest.raises(JobNotFound):
            table.get(second)
        assert (table.stored, table.stored_bytes) == (0, 0)

        by_bytes = JobTable(ttl_s=10, max_results=100, max_bytes=70, clock=clock)
        ids = [await _finished(by_bytes) for _ in range(3)]
        assert (by_bytes.stored, by_bytes.stored_bytes) == (2, 60)
        assert by_bytes.get(ids[2]).reply == Reply(200, b"x" * 30)

    asyncio.run(scenario())


def test_cancelled_and_removed_pending_jobs() -> None:
    async def scenario() -> None:
        table = JobTable(ttl_s=10, max_results=10, max_bytes=1000)
        queued: Future[OcrResult] = Future()
        job = table.add([queued], _reply, _stop)
        assert table.pending == 1 and job.cancel()
        await job.settled.wait()
        assert job.state is JobState.CANCELLED and table.get(job.id).reply == _cancelled()
        assert not job.cancel()

        running: Future[OcrResult] = Future()
        assert running.set_running_or_notify_cancel()
        gone = table.add([running], _reply, _stop)
        table.remove(gone)
        running.set_result(OcrResult(input="x"))
        await gone.settled.wait()
        with pytest.raises(JobNotFound):
            table.get(gone.id)
        assert table.pending == 0 and table.stored == 1

    asyncio.run(scenario())


def _cancelled() -> Reply:
    return Reply(410, b"x" * 30)


def test_a_batch_with_a_running_input_is_cancelled_whole_or_not_at_all() -> None:
    """DELETE without kill decides first: an input already running refuses the whole
    job and leaves the queued ones queued. A client gone cancels what is still queued."""

    async def scenario() -> None:
        table = JobTable(ttl_s=10, max_results=10, max_bytes=1000)
        running: Future[OcrResult] = Future()
        queued: Future[OcrResult] = Future()
        assert running.set_running_or_notify_cancel()
        job = table.add([running, queued], _reply, _stop)
        assert not job.cancel() and not queued.cancelled()
        assert not job.cancelling

        left: Future[OcrResult] = Future()
        assert left.set_running_or_notify_cancel()
        waiting: Future[OcrResult] = Future()
        table.remove(table.add([left, waiting], _reply, _stop))
        assert waiting.cancelled() and left.running()

        document = DocumentFuture(2)  # a split document: its queued pages are dropped
        page_running: Future[OcrResult] = Future()
        page_queued: Future[OcrResult] = Future()
        for page in (page_running, page_queued):
            document.add_job(page)
        assert page_running.set_running_or_notify_cancel()
        table.remove(table.add([document], _reply, _stop))
        assert page_queued.cancelled() and page_running.running()

    asyncio.run(scenario())


def test_a_batch_with_an_input_done_is_not_cancelled_and_one_all_queued_is(
    tmp_path: Path,
) -> None:
    """Against a real pool: an input already done (none running) refuses the batch and
    leaves the rest queued; a batch all queued is cancelled whole, as CANCELLED."""
    paths = make_inputs(tmp_path, ["done.png", "occupant.png", "a.png", "b.png"])

    async def scenario(pool: OcrPool) -> None:
        table = JobTable(ttl_s=10, max_results=10, max_bytes=1000)

        def stop(futures: Sequence[Future[OcrResult]], kill: bool) -> bool:
            return pool.cancel_all(futures, kill=kill)

        done = pool.submit(paths[0])
        await asyncio.wrap_future(done)
        occupant = pool.submit(paths[1])  # holds the one worker: the others stay queued
        queued, a, b = (pool.submit(path) for path in (paths[2], paths[3], paths[3]))
        partial = table.add([done, queued], _reply, stop)
        assert not partial.cancel() and not queued.cancelled() and not partial.cancelling
        whole = table.add([a, b], _reply, stop)
        assert whole.cancel() and a.cancelled() and b.cancelled()
        await whole.settled.wait()
        assert whole.state is JobState.CANCELLED
        assert pool.cancel_all([occupant, queued], kill=True)

    with fake_pool(workers=1, spares=0, engine_options={"delay": 30}) as pool:
        asyncio.run(scenario(pool))


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("bad"), 422),
        (ImageTooLarge("bomb", width=10**5, height=10**5, max_pixels=10**8), 422),
        (EngineError("failed"), 422),
        (ResourceUnavailable("missing", resource="x.ocr"), 503),
        (JobTimeout("slow", timeout=3.0, stderr_tail="..."), 504),
        (WorkerCrashed("died", signal="SIGSEGV", stderr_tail="..."), 502),
        (MemoryLimitExceeded("big", rss_mb=3000, limit_mb=2048), 502),
        (EngineStartError("no engine", stderr_tail="..."), 503),
        (PoolClosed("closed"), 503),
        (JobCancelled("cancelled"), 410),
        (QueueFull("full", retry_after_s=1), 429),
    ],
)
def test_every_error_has_its_status_and_no_private_field(error: OcrPoolError, status: int) -> None:
    assert http_status_of(error) == status
    reply = error_reply(error)
    body = json.loads(reply.body)
    assert reply.status == status and body["type"] == type(error).__name__
    assert "stderr_tail" not in body
    assert (status in (429, 503)) == ("Retry-After" in dict(reply.headers)), reply.headers


def test_records_answered_carry_no_worker_output_and_the_log_gets_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A partial document's failed page and a batch's failed input hold a ``stderr_tail``
    (``ocrpool run`` writes it in its records): the answer leaves it out, the log has it."""
    dump = "Fatal Python error: Segmentation fault"
    crashed = WorkerCrashed("page 2 died", signal="SIGSEGV", stderr_tail=dump)
    partial = OcrResult(
        "doc.tif",
        pages=(Page("p1"), Page("", error=crashed)),
        error=PagesFailed("1 of 2 pages failed: 2", pages=[2], total=2),
    )
    failed = OcrResult("b.png", error=JobTimeout("slow", timeout=3.0, stderr_tail=dump))
    records = [
        (Record(InputFile(result.input, 1, None), "tiff", result), result)
        for result in (partial, failed)
    ]
    for batch in (False, True):
        reply = record_reply(records[: 1 + batch], Output(), batch)
        assert (
            reply.status == 200 and b"stderr_tail" not in reply.body and b"Fatal" not in reply.body
        )
    crashed_page = json.loads(record_reply(records, Output(), True).body)[0]["pages"][1]
    assert crashed_page["error"] == {
        "type": "WorkerCrashed",
        "message": "page 2 died",
        "exitcode": None,
        "signal": "SIGSEGV",
    }
    with caplog.at_level(logging.WARNING, logger="ocrpool"):
        for result in (partial, failed):
            log_private(result)
    assert [dump in message for message in caplog.messages] == [True, True]
