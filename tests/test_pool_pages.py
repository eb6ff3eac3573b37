"""Split documents: page jobs on any worker, one result in page order, a page fails alone."""

from __future__ import annotations

import io
import os
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from xml.etree import ElementTree

import pytest
from fakes import fake_pool, make_document, make_inputs
from pypdf import PdfReader

from ocrpool import (
    Attempt,
    ExitCause,
    InvalidInput,
    JobCancelled,
    JobTimeout,
    OcrPool,
    OcrResult,
    Page,
    PageProgress,
    PagesFailed,
    PageSpan,
    PoolClosed,
    WorkerCrashed,
    WorkerExit,
    WorkerState,
)
from ocrpool.exports import Export, ExportFormat
from ocrpool.formats import file_page_count, image_size, page_count, page_sizes
from ocrpool.merge import merge_exports
from ocrpool.pool import documents
from ocrpool.pool.documents import (
    DocumentFuture,
    PageJobs,
    PageTally,
    Uncounted,
    plan,
    spans_of,
)
from tests.support.served import wait_until


def _texts(stem: str, pages: int) -> list[str]:
    return [f"{stem} p{n}" for n in range(1, pages + 1)]


def test_page_count_reads_tiff_directories_and_pdf_page_trees(tmp_path: Path) -> None:
    tiff = make_document(tmp_path / "doc.tif", 7)
    with open(tiff, "rb") as handle:
        assert page_count(handle) == 7
    with open("examples/images/multipage-3.tif", "rb") as handle:
        assert page_count(handle) == 3
    with open("examples/images/skimage-page.png", "rb") as handle:
        assert page_count(handle) == 1
    assert page_count(io.BytesIO(b"not an image")) is None


def test_file_page_count_reads_regular_files_only(tmp_path: Path) -> None:
    assert file_page_count(make_document(tmp_path / "doc.tif", 7)) == 7
    assert file_page_count("examples/images/skimage-page.png") == 1
    (tmp_path / "notes.txt").write_bytes(b"not an image")
    assert file_page_count(str(tmp_path / "notes.txt")) is None
    assert file_page_count(str(tmp_path / "missing.png")) is None
    assert file_page_count(str(tmp_path)) is None  # a folder
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    assert file_page_count(str(fifo)) is None  # did not block


@pytest.mark.parametrize("byte_order", [b"II*\x00", b"MM\x00*"])
def test_a_tiff_cut_inside_its_header_is_unknown_and_goes_to_the_engine_whole(
    tmp_path: Path, byte_order: bytes
) -> None:
    whole = byte_order + (8).to_bytes(4, "little" if byte_order == b"II*\x00" else "big")
    cuts = []
    for size in range(4, 8):  # the signature, and part of the first directory's offset
        cut = tmp_path / f"cut{size}.tif"
        cut.write_bytes(whole[:size])
        cuts.append(str(cut))
        assert file_page_count(str(cut)) is None
        assert page_count(io.BytesIO(whole[:size])) is None
        assert image_size(str(cut)) is None
        assert page_sizes(str(cut)) is None
    with fake_pool(workers=1, max_pixels=None) as pool:
        results = list(pool.imap([*cuts, "examples/images/phototest.tif"]))
    # Not split, not refused by the caller's process: the engine says what is wrong (the
    # fake engine reads any file).
    assert [result.text for result in results] == ["cut4", "cut5", "cut6", "cut7", "phototest"]
    with fake_pool(workers=1, max_pixels=10**8) as pool:  # a limit needs the size: refused
        errors = [str(pool.submit(cut).exception()) for cut in cuts]
    assert errors == ["corrupt TIFF: cannot read the image size"] * 4


@pytest.mark.parametrize(("mode", "byte_order"), [("L", b"II"), ("I;16B", b"MM")])
def test_tiff_pages_are_counted_as_pillow_counts_them_and_a_cut_file_is_unknown(
    tmp_path: Path, mode: str, byte_order: bytes
) -> None:
    from PIL import Image, TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    for tag in range(65000, 65060):  # 60 private tags: directories longer than one read
        info[tag] = f"tag {tag}"
    frames = [Image.new(mode, (40 + n, 30), 255) for n in range(5)]
    path = tmp_path / "doc.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:], tiffinfo=info)
    with Image.open(path) as image:
        expected = image.n_frames
    data = path.read_bytes()
    assert data.startswith(byte_order)
    assert file_page_count(str(path)) == expected == 5
    with open(path, "rb") as handle:
        assert page_count(handle) == expected
    first = int.from_bytes(data[4:8], "little" if byte_order == b"II" else "big")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: first + 2 + 12])  # the first directory cut before the page size
    assert file_page_count(str(cut)) is None


def test_a_plan_splits_long_documents_only(tmp_path: Path) -> None:
    jobs = PageJobs(pages_per_job=2, min_pages=4)
    doc = make_document(tmp_path / "doc.tif", 5)
    split = plan(doc, jobs)
    assert split is not None and split.temp_path is None
    assert [(s.start, s.count) for s in split.spans] == [(0, 2), (2, 2), (4, 1)]
    info = os.stat(doc)  # counted in the caller's process, as Ray's is: size and mtime
    assert {s.stamp for s in split.spans} == {(info.st_size, info.st_mtime_ns)}
    assert plan(make_document(tmp_path / "short.tif", 3), jobs) is None
    assert plan(make_inputs(tmp_path, ["a.png"])[0], jobs) is None
    assert plan(doc, None) is None
    assert plan(PageSpan(doc, 0, 1), jobs) is None


def test_a_page_span_no_worker_could_read_is_refused_where_it_is_given(tmp_path: Path) -> None:
    """A negative start read pages counted back from the end, no page at all failed as an
    ``IndexError`` and a float was cut down to a page number."""
    doc = make_document(tmp_path / "doc.tif", 5)
    refused: list[tuple[object, type[Exception], str]] = [
        (PageSpan(doc, -3, 2), ValueError, "start=-3, count=2"),
        (PageSpan(doc, 0, 0), ValueError, "start=0, count=0"),
        (PageSpan(doc, 1.7, 1), TypeError, "start must be an integer, not 1.7"),  # type: ignore[arg-type]
        (PageSpan(doc, 0, True), TypeError, "count must be an integer, not True"),
        (PageSpan(doc.encode(), 0, 1), TypeError, "path must be a str, not bytes"),  # type: ignore[arg-type]
    ]
    with fake_pool(workers=1, spares=0) as pool:
        for span, error, says in refused:
            with pytest.raises(error, match=says):
                pool.submit(span)  # type: ignore[arg-type]
        pages = pool.recognize(PageSpan(doc, 1, 2)).pages
        assert [page.text for page in pages] == ["doc p2", "doc p3"]
        assert pool.stats().submitted == 1


def test_a_page_span_whose_path_is_a_str_subclass_travels_as_a_plain_str(
    tmp_path: Path,
) -> None:
    """A subclass pickles by reference to its class: one a worker cannot import (or
    the supervisor cannot even pickle, as a local class) killed the supervisor, and the
    pool with it, when the span was sent."""

    class Name(str):
        pass

    doc = make_document(tmp_path / "doc.tif", 3)
    with fake_pool(workers=1, spares=0) as pool:
        pages = pool.recognize(PageSpan(Name(doc), 1, 1)).pages
        assert [page.text for page in pages] == ["doc p2"]
        assert pool.stats().state == "running"


def test_a_30_page_document_runs_on_two_workers_and_comes_back_in_order(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 30)
    with fake_pool(workers=2, spares=0, engine_options={"delay": 0.02}) as pool:
        result = pool.recognize(doc)
        stats = pool.stats()
    assert result.ok and not result.partial
    assert [page.text for page in result.pages] == _texts("doc", 30)
    assert result.input == doc
    assert len({attempt.worker_pid for attempt in result.attempts}) >= 2
    assert stats.submitted == stats.completed == 30
    assert stats.pages == PageProgress(documents=1, documents_done=1, pages=30, pages_done=30)


def test_split_and_unsplit_give_the_same_pages(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 6)
    with fake_pool(workers=2, spares=0) as pool:
        split = pool.recognize(doc)
    with fake_pool(workers=2, spares=0, split_pages=False) as pool:
        whole = pool.recognize(doc)
        assert pool.stats().submitted == 1
    assert split.pages == whole.pages


def test_a_page_that_crashes_every_time_fails_alone(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 30)
    with fake_pool(workers=2, spares=0, retries=1, engine_options={"fault_page": 7}) as pool:
        result = pool.submit_result(doc).result()
        stats = pool.stats()
    assert not result.ok and result.partial
    assert isinstance(result.error, PagesFailed)
    assert result.error.pages == [7] and result.error.total == 30
    assert result.failed_pages == (7,)
    assert isinstance(result.pages[6].error, WorkerCrashed)
    texts = [page.text for page in result.pages]
    assert texts[:6] + texts[7:] == [t for n, t in enumerate(_texts("doc", 30), 1) if n != 7]
    assert stats.quarantined == (f"{doc} [page 7]",)
    assert stats.retries == 1  # only the bad page was tried again
    assert stats.submitted == 30


def test_submit_raises_pages_failed_for_a_partial_document(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 4)
    options = {"fault_page": 2, "page_fault": "raise"}
    with (
        fake_pool(workers=1, spares=0, engine_options=options) as pool,
        pytest.raises(PagesFailed) as caught,
    ):
        pool.recognize(doc)
    assert caught.value.pages == [2]
    partial = caught.value.result
    assert partial.partial and [page.text for page in partial.pages][2:] == ["doc p3", "doc p4"]


def test_a_document_replaced_while_its_pages_run_never_comes_back_mixed(
    tmp_path: Path,
) -> None:
    """The pages run after the file was replaced fail (``InvalidInput``), so the result is
    partial rather than pages of two files passed off as one document; in the merged PDF
    they are blank pages, not the new file's images."""
    doc = make_document(tmp_path / "doc.tif", 6)
    options = {"delay": 0.2, "exports": ["pdf"]}
    with fake_pool(workers=1, spares=0, pages_per_job=1, engine_options=options) as pool:
        future = pool.submit_result(doc)
        wait_until(lambda: pool.stats().pages.pages_done >= 1, 30, "the first page")
        replacement = make_document(tmp_path / "new.tif", 6)
        os.replace(replacement, doc)
        result = future.result(timeout=60)
    assert isinstance(result.error, PagesFailed) and result.partial
    failed = result.failed_pages
    assert failed and 1 not in failed and failed == tuple(range(failed[0], 7))
    assert all(isinstance(result.pages[n - 1].error, InvalidInput) for n in failed)
    assert "replaced or changed after it was split" in str(result.pages[failed[0] - 1].error)
    (merged,) = result.exports
    pages = PdfReader(io.BytesIO(merged.data)).pages
    assert len(pages) == 6
    assert all(not pages[n - 1].images for n in failed)


@pytest.mark.slow
def test_a_page_that_hangs_is_killed_at_the_timeout_and_the_rest_finish(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 8)
    options = {"fault_page": 3, "page_fault": "hang"}
    with fake_pool(workers=2, spares=0, job_timeout=1.5, engine_options=options) as pool:
        result = pool.submit_result(doc).result()
    assert result.partial and result.failed_pages == (3,)
    assert isinstance(result.pages[2].error, JobTimeout)
    assert sum(1 for page in result.pages if page.error is None) == 7


def test_a_document_whose_every_page_fails_fails_with_the_pages_error(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "crash-doc.tif", 4)
    with fake_pool(workers=2, spares=0, retries=0) as pool:
        result = pool.submit_result(doc).result()
    assert isinstance(result.error, WorkerCrashed) and not result.partial
    assert result.failed_pages == (1, 2, 3, 4)


def test_the_quota_counts_page_jobs(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 20)
    exits: list[WorkerExit] = []
    with fake_pool(workers=2, spares=1, max_jobs_per_worker=5, on_worker_exit=exits.append) as pool:
        result = pool.recognize(doc)
    assert result.ok and len(result.pages) == 20
    assert sum(e.jobs for e in exits) == 20
    assert all(e.jobs <= 5 for e in exits)
    assert sum(1 for e in exits if e.cause is ExitCause.MAX_JOBS) >= 3


def test_bytes_are_written_once_in_the_pools_folder_and_removed(tmp_path: Path) -> None:
    data = Path(make_document(tmp_path / "doc.tif", 5)).read_bytes()
    folder = tmp_path / "pool"
    folder.mkdir()
    split = plan(data, PageJobs(pages_per_job=1, min_pages=2), str(folder))
    assert split is not None and split.temp_path is not None
    assert os.listdir(folder) == [os.path.basename(split.temp_path)]
    assert {span.path for span in split.spans} == {split.temp_path}
    assert Path(split.temp_path).read_bytes() == data
    before = set(os.listdir(tempfile.gettempdir()))
    with fake_pool(workers=2, spares=0) as pool:
        (own,) = set(os.listdir(tempfile.gettempdir())) - before
        assert own.startswith(f"ocrpool-{os.getpid()}-")
        result = pool.recognize(data, label="upload")
        assert not [
            name for name in os.listdir(Path(tempfile.gettempdir(), own)) if "document" in name
        ]
    assert result.ok and len(result.pages) == 5 and result.input == "upload"
    assert set(os.listdir(tempfile.gettempdir())) - before == set()  # the folder went at close


def test_bytes_submitted_after_close_are_refused_not_written(tmp_path: Path) -> None:
    data = Path(make_document(tmp_path / "doc.tif", 5)).read_bytes()
    pool = fake_pool(workers=1, spares=0)
    pool.close()
    with pytest.raises(PoolClosed):
        pool.submit(data)


def test_merged_pdf_and_text_exports_hold_every_page_in_order(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 9)
    options = {"exports": ["pdf", "txt"], "fault_page": 4, "page_fault": "raise"}
    with fake_pool(workers=2, spares=0, pages_per_job=2, engine_options=options) as pool:
        assert pool.stats().submitted == 0
        result = pool.submit_result(doc).result()
        assert pool.stats().submitted == 5
    assert result.failed_pages == (3, 4)  # one span of two pages
    reader = PdfReader(io.BytesIO(result.export("pdf")))
    assert len(reader.pages) == 9
    texts = [page.get("/FakeText") for page in reader.pages]
    expected = _texts("doc", 9)
    assert texts[:2] + texts[4:] == expected[:2] + expected[4:]
    assert texts[2:4] == [None, None]  # the original pages, without text
    assert result.export("txt").decode().splitlines() == [
        f"txt export of {t}" for n, t in enumerate(expected, 1) if n not in (3, 4)
    ]


def test_merged_hocr_holds_every_page_in_order_renumbered(tmp_path: Path) -> None:
    """Each page job's hOCR numbers its pages from 1; the merged file numbers them as
    the document does, and a failed span is there as empty pages of the TIFF's sizes."""
    doc = make_document(tmp_path / "doc.tif", 7)
    options = {"exports": ["hocr"], "fault_page": 3, "page_fault": "raise"}
    with fake_pool(workers=2, spares=0, pages_per_job=2, engine_options=options) as pool:
        result = pool.submit_result(doc).result()
        assert pool.stats().submitted == 4
    assert result.failed_pages == (3, 4)
    root = ElementTree.fromstring(result.export("hocr"))
    pages = root.findall(".//x:div[@class='ocr_page']", {"x": "http://www.w3.org/1999/xhtml"})
    assert [page.get("id") for page in pages] == [f"page_{n}" for n in range(1, 8)]
    titles = [page.get("title") or "" for page in pages]
    assert [title.rsplit("ppageno ", 1)[1] for title in titles] == [str(n) for n in range(7)]
    assert titles[2:4] == ["bbox 0 0 42 30; ppageno 2", "bbox 0 0 43 30; ppageno 3"]
    texts = ["".join(page.itertext()).strip() for page in pages]
    expected = _texts("doc", 7)
    assert texts == [*expected[:2], "", "", *expected[4:]]
    words = [word.get("id") for word in root.iter() if word.get("class") == "ocrx_word"]
    assert words == [f"word_{n}_1" for n in (1, 2, 5, 6, 7)]
    meta = root.find(
        ".//x:meta[@name='ocr-number-of-pages']", {"x": "http://www.w3.org/1999/xhtml"}
    )
    assert meta is not None and meta.get("content") == "7"


def test_an_hocr_piece_without_its_pages_is_left_empty_not_lost() -> None:
    """A span's hOCR that does not hold its pages (cut short, or other markup) becomes
    empty pages; the other spans' pages are kept, attributes in any order."""
    good = (
        b"<html><body>\n <div id='page_1' class='ocr_page' title='ppageno 0'>"
        b"<span class='ocrx_word' id='word_1_1'>one</span></div>\n</body></html>"
    )
    cut = b"<html><body>\n <div class='ocr_page' id='page_1'>two"
    (merged,) = merge_exports(
        [ExportFormat.HOCR],
        [
            (PageSpan("/gone.tif", 0, 1), (Export(ExportFormat.HOCR, good),)),
            (PageSpan("/gone.tif", 1, 1), (Export(ExportFormat.HOCR, cut),)),
        ],
    )
    assert merged.data == (
        b"<html><body>\n <div id='page_1' class='ocr_page' title='ppageno 0'>"
        b"<span class='ocrx_word' id='word_1_1'>one</span></div>\n"
        b' <div class="ocr_page" id="page_2" title="ppageno 1"></div>\n</body></html>'
    )


def test_an_export_that_cannot_be_merged_keeps_the_document_whole(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 5)
    with fake_pool(workers=2, spares=0, engine_options={"exports": ["docx"]}) as pool:
        result = pool.recognize(doc)
        assert pool.stats().submitted == 1
    assert len(result.pages) == 5


def test_a_cancelled_document_cancels_its_queued_pages(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 12)
    [occupant] = make_inputs(tmp_path, ["occupant.png"])
    with fake_pool(workers=1, spares=0, engine_options={"delay": 30}) as pool:
        running = pool.submit(occupant)  # the one worker is on it: the document waits
        future = pool.submit(doc)
        assert isinstance(future, DocumentFuture)
        assert future.cancel()
        stats_after = pool.stats()
        assert pool.cancel(running, kill=True)
    # its pages were never counted: the one job that would count them is cancelled
    assert stats_after.submitted == 2 and stats_after.pages.documents == 0
    assert future.cancelled() and all(job.cancelled() for job in future.jobs())


def test_a_document_runs_once_one_of_its_pages_runs() -> None:
    """As one job's future: running from its first page on, and not cancelled then (its
    other pages stay queued); done pages count as started too."""
    document = DocumentFuture(2)
    first: Future[OcrResult] = Future()
    second: Future[OcrResult] = Future()
    document.add_job(first)
    document.add_job(second)
    assert not document.running()
    assert first.set_running_or_notify_cancel()
    assert document.running()
    assert not document.cancel() and not second.cancelled()
    first.set_result(OcrResult(input="x"))
    assert document.running() and not document.cancel()
    assert document.cancel_jobs(lambda job: job.cancel())  # the kill path still cancels
    assert document.cancelled() and second.cancelled() and not document.running()


def test_a_document_whose_pages_are_all_back_is_not_cancelled_by_the_kill_path() -> None:
    """Only the merge of its exports is left: a kill would stop nothing and drop the
    result on its way, so ``cancel(kill=True)`` says no, as for a finished job."""
    document = DocumentFuture(2)
    pages = [Future[OcrResult]() for _ in range(2)]
    for page in pages:
        document.add_job(page)
        assert page.set_running_or_notify_cancel()
        page.set_result(OcrResult(input="x"))
    stopped: list[Future[OcrResult]] = []
    assert not document.cancel_jobs(stopped.append)
    assert not document.cancelled() and stopped == []
    half = DocumentFuture(2)  # one page job not even submitted yet: still pending
    half.add_job(pages[0])
    assert half.cancel_jobs(stopped.append) and half.cancelled()


def test_without_kill_a_document_with_a_page_running_is_not_cancelled(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 4)
    with fake_pool(workers=1, spares=0, engine_options={"delay": 30}) as pool:
        future = pool.submit(doc)
        assert isinstance(future, DocumentFuture)
        wait_until(lambda: pool.stats().submitted == 4, 30, "its worker to count its pages")
        _wait_until_busy(pool, 1)
        assert future.running()
        assert not pool.cancel(future) and not future.cancel()
        assert not future.done() and not any(job.cancelled() for job in future.jobs())
        assert pool.cancel(future, kill=True)
        assert future.cancelled()


def _wait_until_busy(pool: OcrPool, workers: int) -> None:
    deadline = time.monotonic() + 30
    while sum(w.state is WorkerState.BUSY for w in pool.stats().workers) < workers:
        assert time.monotonic() < deadline, "the page jobs never started"
        time.sleep(0.01)


def test_cancel_with_kill_stops_a_documents_running_pages(tmp_path: Path) -> None:
    """Every page hangs in native code with its signals masked: only the kill path
    (SIGTERM, grace, SIGKILL) ends the two running ones; the four queued never start."""
    doc = make_document(tmp_path / "hang-doc.tif", 6)
    exits: list[WorkerExit] = []
    with fake_pool(workers=2, spares=0, on_worker_exit=exits.append) as pool:
        future = pool.submit(doc)
        _wait_until_busy(pool, 2)
        assert pool.cancel(future, kill=True)
        assert future.cancelled()
        pool.close()  # returns only once no worker runs a page: a hung one never would
        stats = pool.stats()
    assert [e.cause for e in exits].count(ExitCause.CANCELLED) == 2
    assert stats.submitted == 6 and stats.completed == 0


def test_a_paths_pages_are_counted_by_its_worker_never_in_the_callers_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def counted_here(path: str, **reads: bool) -> object:
        raise AssertionError(f"{path} was counted in the caller's process")

    monkeypatch.setattr(documents, "file_layout", counted_here)
    doc = make_document(tmp_path / "doc.tif", 12)
    [image] = make_inputs(tmp_path, ["one.png"])
    with fake_pool(workers=2, spares=0) as pool:
        split, whole = pool.submit(doc), pool.submit(image)
        assert [page.text for page in split.result().pages] == _texts("doc", 12)
        assert whole.result().ok and len(whole.result().pages) == 1
        stats = pool.stats()
    assert stats.submitted == stats.completed == 13  # the 12 pages and the image
    assert stats.pages == PageProgress(documents=1, documents_done=1, pages=12, pages_done=12)


def test_a_document_submitted_just_before_close_is_read_to_its_last_page(tmp_path: Path) -> None:
    """``close`` finishes what was submitted: page jobs found after it are taken too."""
    doc = make_document(tmp_path / "doc.tif", 9)
    with fake_pool(workers=2, spares=0, engine_options={"delay": 0.01}) as pool:
        future = pool.submit(doc)
        pool.close()
    assert [page.text for page in future.result(timeout=0).pages] == _texts("doc", 9)


def test_a_counted_document_keeps_its_future_its_start_and_the_attempts_of_its_count() -> None:
    times = iter([10.0, 25.0])
    tally = PageTally()
    uncounted = Uncounted("doc.tif", True, (), PageJobs(2, 2), tally, lambda: next(times))
    count: Future[OcrResult] = Future()
    uncounted.counting(count)
    assert uncounted.future.jobs() == (count,) and not uncounted.future.running()
    assert count.set_running_or_notify_cancel() and uncounted.future.running()
    pages = [Future[OcrResult]() for _ in range(2)]
    uncounted.split.found(spans_of("/d/doc.tif", 4, None, 2), pages)
    assert tally.counts() == PageProgress(documents=1, pages=4)
    lost = Attempt(11, "WorkerCrashed", 0.5, "died while counting")
    count.set_result(OcrResult("doc.tif", attempts=(lost, Attempt(12, "ok", 0.01))))
    assert not uncounted.future.done()  # its pages make its result
    for n, page in enumerate(pages):
        assert page.set_running_or_notify_cancel()
        texts = (Page(f"p{2 * n + 1}"), Page(f"p{2 * n + 2}"))
        page.set_result(OcrResult("x", pages=texts, attempts=(Attempt(13 + n, "ok", 1.0),)))
    result = uncounted.future.result(timeout=0)
    assert [page.text for page in result.pages] == ["p1", "p2", "p3", "p4"]
    assert [attempt.worker_pid for attempt in result.attempts] == [11, 13, 14]
    assert result.elapsed_s == 15.0 and result.input == "doc.tif"
    assert uncounted.future.jobs() == (count, *pages)


def test_a_path_too_short_to_split_has_its_one_jobs_result_and_error() -> None:
    tally = PageTally()
    uncounted = Uncounted("scan.png", True, (), PageJobs(2, 4), tally)
    count: Future[OcrResult] = Future()
    uncounted.counting(count)
    assert count.set_running_or_notify_cancel()
    count.set_result(OcrResult("scan.png", error=InvalidInput("not an image", input="scan.png")))
    with pytest.raises(InvalidInput, match="not an image"):
        uncounted.future.result(timeout=0)
    assert tally.counts() == PageProgress()  # never a document


def test_a_page_job_added_after_a_kill_is_stopped_too() -> None:
    """A page job the supervisor queued (and may have started) before the document
    learnt of it is stopped as the kill stopped the others, not only cancelled."""
    document = DocumentFuture(2)
    first = Future[OcrResult]()
    document.add_job(first)
    assert first.set_running_or_notify_cancel()
    stopped: list[Future[OcrResult]] = []
    assert document.cancel_jobs(stopped.append) and document.cancelled()
    late = Future[OcrResult]()
    assert late.set_running_or_notify_cancel()
    document.add_job(late)
    assert stopped == [first, late]


def test_a_path_not_yet_counted_is_cancelled_as_one_job_is() -> None:
    """Until its worker finds a document, the future is one job's: a kill stops that job
    and the future ends with the job's result (``JobCancelled``), not cancelled."""
    uncounted = Uncounted("scan.png", True, (), PageJobs(1, 2), PageTally())
    count = Future[OcrResult]()
    uncounted.counting(count)
    assert count.set_running_or_notify_cancel()
    asked: list[Future[OcrResult]] = []
    assert not uncounted.future.cancel_jobs(lambda job: asked.append(job) or False)
    assert asked == [count] and not uncounted.future.done()  # the job could not be stopped
    assert uncounted.future.cancel_jobs(lambda job: True)
    count.set_result(OcrResult("scan.png", error=JobCancelled("stopped")))
    with pytest.raises(JobCancelled):
        uncounted.future.result(timeout=0)
    queued = Uncounted("scan.png", True, (), PageJobs(1, 2), PageTally())
    waiting = Future[OcrResult]()
    queued.counting(waiting)
    assert queued.future.cancel_jobs(lambda job: job.cancel()) and waiting.cancelled()
    assert queued.future.cancelled()  # as a queued job's future is


def test_a_kill_asked_while_the_count_is_in_the_workers_hands_stops_the_document(
    tmp_path: Path,
) -> None:
    """cancel(kill=True) says True for a document whose count job a worker holds; the
    worker answers its Pages before the kill lands (the count takes microseconds): the
    document must still end with JobCancelled, not run every page."""
    doc = make_document(tmp_path / "doc.tif", 12)
    [warm] = make_inputs(tmp_path, ["warm.png"])
    go, parked = threading.Event(), threading.Event()

    def park(_: Future[OcrResult]) -> None:  # holds the supervisor thread, not its lock
        parked.set()
        go.wait(30)

    with fake_pool(workers=1, spares=0, engine_options={"delay": 0.3}) as pool:
        first = pool.submit(warm)
        first.add_done_callback(park)
        assert parked.wait(30)  # the supervisor thread sits in the callback; worker idle
        future = pool.submit(doc)  # sent to the idle worker from submit, under the lock
        time.sleep(0.5)  # it acknowledges and answers Pages; nobody reads them yet
        assert pool.cancel(future, kill=True)
        go.set()
        with pytest.raises(JobCancelled):  # not every page of it, read all the same
            future.result(timeout=60)
        stats = pool.stats()
    assert stats.submitted == 2 and stats.completed == 1 and stats.failed == 1


def test_a_fifo_is_never_opened_to_count_its_pages(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    assert plan(str(fifo), PageJobs(pages_per_job=1, min_pages=2)) is None  # did not block


def test_a_failed_page_of_a_pdf_is_its_original_page_in_the_merged_pdf(tmp_path: Path) -> None:
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, TextStringObject

    writer = PdfWriter()
    for number in range(1, 6):
        page = writer.add_blank_page(300 + number, 400)
        page[NameObject("/Original")] = TextStringObject(f"original {number}")
    doc = tmp_path / "scan.pdf"
    with open(doc, "wb") as handle:
        writer.write(handle)
    options = {"exports": ["pdf"], "fault_page": 2, "page_fault": "raise"}
    with fake_pool(workers=2, spares=0, engine_options=options) as pool:
        result = pool.submit_result(str(doc)).result()
    assert result.failed_pages == (2,)
    pages = PdfReader(io.BytesIO(result.export("pdf"))).pages
    assert len(pages) == 5
    assert pages[1].get("/Original") == "original 2" and pages[1].get("/FakeText") is None
    assert [pages[i].get("/FakeText") for i in (0, 2, 3, 4)] == [
        "scan p1",
        "scan p3",
        "scan p4",
        "scan p5",
    ]
