"""Progress lines off a terminal and the closing summary (``ocrpool.batch.progress``,
``ocrpool.batch.summary``), with an injected clock and stream."""

from __future__ import annotations

import io

from ocrpool.batch.ledger import Verdict
from ocrpool.batch.progress import Bar, LogLines, Silent, make_progress
from ocrpool.batch.records import InputFile, Record
from ocrpool.batch.summary import Outcome, Summary, Tally
from ocrpool.errors import InvalidInput, JobTimeout, OcrPoolError, PagesFailed, WorkerCrashed
from ocrpool.results import OcrResult, Page
from ocrpool.stats import PageProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(
    error: OcrPoolError | None = None, rss_mb: float | None = None, text: str = "x"
) -> Record:
    result = OcrResult("/a.png", pages=(Page(text),), error=error, rss_mb=rss_mb)
    return Record(InputFile("/a.png", 1, 1.0), "png", result)


def test_lines_come_at_the_interval_and_at_the_end() -> None:
    clock, stream, tally = FakeClock(), io.StringIO(), Tally()
    progress = LogLines(stream, clock, interval_s=10.0)
    tally.queued = 40
    for _ in range(10):
        tally.add(_record())
        clock.now += 1.0
        progress.update(tally)
    tally.add(_record(InvalidInput("bad")))
    tally.worker_exits = {"max_jobs": 2, "shutdown": 1}
    tally.scanning = False
    clock.now += 1.0
    progress.update(tally)
    progress.close(tally)
    assert stream.getvalue().splitlines() == [
        "ocrpool: 10/40+ done, 1.0 images/s, ETA -, 0 failed, 0 recycles",
        "ocrpool: 11/40 done, 1.0 images/s, ETA 00:29, 1 failed, 2 recycles",
    ]


def test_a_split_documents_pages_are_counted_and_drive_the_eta() -> None:
    """10 inputs, one of them a 40-page document split into page jobs: the rate and ETA
    count its pages as images (49 of them in all), not the document as one."""
    clock, stream, tally = FakeClock(), io.StringIO(), Tally(queued=10, scanning=False)
    progress = LogLines(stream, clock, interval_s=10.0)
    for _ in range(2):
        tally.add(_record())
    tally.split = PageProgress(documents=1, pages=40, pages_done=20)
    clock.now += 11.0
    progress.update(tally)
    for _ in range(7):
        tally.add(_record())
    tally.split = PageProgress(documents=1, documents_done=1, pages=40, pages_done=40)
    tally.add(_record())
    clock.now += 11.0
    progress.close(tally)
    assert stream.getvalue().splitlines() == [
        "ocrpool: inputs 2/10 done, pages 20/40 of 1 split document, 2.0 pages/s, "
        "ETA 00:13, 0 failed, 0 recycles",
        "ocrpool: inputs 10/10 done, pages 40/40 of 1 split document, 2.2 pages/s, "
        "ETA 00:00, 0 failed, 0 recycles",
    ]


def test_the_bar_counts_a_split_documents_pages() -> None:
    stream, tally = Terminal(), Tally(queued=3, scanning=False)
    bar = Bar(stream)
    tally.add(_record())
    tally.split = PageProgress(documents=1, pages=20, pages_done=5)
    bar.close(tally)
    assert "6/22" in stream.getvalue()
    assert "inputs 1/3, pages 5/20" in stream.getvalue()


def test_the_kind_of_display_follows_the_stream() -> None:
    clock = FakeClock()
    assert isinstance(make_progress(io.StringIO(), clock), LogLines)
    assert isinstance(make_progress(Terminal(), clock), Bar)
    assert isinstance(make_progress(Terminal(), clock, quiet=True), Silent)


def test_the_bar_shows_counts_and_a_growing_total() -> None:
    stream, tally = Terminal(), Tally()
    bar = Bar(stream)
    tally.queued = 3
    tally.add(_record())
    bar.update(tally)
    tally.queued, tally.scanning = 5, False
    tally.add(_record(JobTimeout("slow")))
    bar.close(tally)
    assert "2/5" in stream.getvalue()
    assert "1 failed, 0 recycles" in stream.getvalue()


def test_the_summary_counts_by_type_reason_and_cause() -> None:
    tally = Tally(queued=4)
    tally.add(_record(rss_mb=120.0))
    tally.add(_record(rss_mb=310.4, text=" \n"))
    tally.add(_record(InvalidInput("bad")))
    tally.add(_record(JobTimeout("slow")))
    tally.skipped["not an image"] += 2
    tally.earlier[Verdict.DONE] += 5
    tally.earlier[Verdict.DUPLICATE] += 1
    tally.worker_exits = {"shutdown": 2, "max_jobs": 3, "timeout": 1}
    summary = Summary(tally, elapsed_s=2.0)
    assert summary.outcome is Outcome.SOME_FAILED
    assert summary.lines() == [
        "ocrpool run: done",
        "  ok:           2",
        "  failed:       2 (InvalidInput 1, JobTimeout 1)",
        "  skipped:      2 (not an image 2)",
        "  done before:  5 ok, 0 failed (--retry-failed retries them), 1 found twice",
        "  pages:        4 (1 without text)",
        "  elapsed:      2.0 s (2.00 images/s)",
        "  worker exits: max_jobs 3, shutdown 2, timeout 1",
        "  peak worker RSS: 310 MB",
    ]
    assert summary.to_dict()["worker_exits"] == {"shutdown": 2, "max_jobs": 3, "timeout": 1}
    assert summary.to_dict()["outcome"] == "some_failed"
    assert summary.to_dict()["empty_pages"] == 1


def test_pages_failed_counts_every_document_with_failed_pages_not_only_partial_ones() -> None:
    crash = WorkerCrashed("died")
    partial = OcrResult(
        "/doc.tif",
        pages=(Page("p1"), Page("", error=crash)),
        error=PagesFailed("1 of 2 pages failed: 2", pages=[2], total=2),
    )
    lost = OcrResult("/all.tif", pages=(Page("", error=crash),) * 2, error=crash)
    tally = Tally(queued=2)
    for result in (partial, lost):
        tally.add(Record(InputFile(result.input, 1, 1.0), "tiff", result))
    lines = Summary(tally, elapsed_s=1.0).lines()
    assert "  pages failed: 3 (in 2 documents, 1 partial)" in lines


def test_failures_left_from_an_earlier_run_still_count() -> None:
    tally = Tally()
    tally.earlier[Verdict.FAILED_BEFORE] += 1
    assert Summary(tally, 1.0).outcome is Outcome.SOME_FAILED
    assert Summary(Tally(), 1.0).outcome is Outcome.OK
    assert Summary(Tally(), 1.0, interrupted=True).outcome is Outcome.INTERRUPTED
