"""Split documents: a multi-page input as page jobs, and the one result they make.

::

    caller's thread                       any pool thread              document's thread
    ---------------                       ---------------              -----------------
    a path, on a local pool:
    Uncounted: one future for the
    caller, one job (``Split``)  ----->   its worker counts pages:
                                          too few: it reads the file,
                                          and that is the result;
                                          enough: the pool queues the
                                          page jobs in its place --+
    bytes, or a path on Ray:                                       |
    plan: count pages (no rendering);                              |
    bytes written once, in the pool's                              |
    folder (scratch.py)                                            |
    Document: one future for the caller                            |
    pool._submit(PageSpan) per span  -->  page job's result  <-----+
                                          (callback: kept) --+
                                                             |  the last one in:
                                                             +->  pages in order, outcome,
                                                                  exports merged (a thread
                                                                  of its own when there are
                                                                  any), temp file removed,
                                                                  the caller's future set

A page job is an ordinary job of the pool: the lease book, retries, quarantine, blame,
``job_timeout`` and the worker quota see page jobs and nothing else. A span that fails
for good leaves its pages in place, each with the span's typed error; the document is
then ``PagesFailed`` (partial) if some pages came back, or fails with the first failed
page's error if none did.

A local pool counts a path's pages in the worker that would read it: counting in the
caller cost its thread a third of a no-op job's time (each system call hands the GIL
to the supervisor thread, and taking it back costs more than the call), and a PDF that
sends the page-tree parser into a loop is then one job's ``job_timeout``, not a caller
stuck in ``submit``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, replace

from ocrpool.engines.base import PageSpan, Source
from ocrpool.errors import EngineError, JobCancelled, OcrPoolError, PagesFailed
from ocrpool.exports import Export, ExportFormat
from ocrpool.formats import Stamp, file_layout, file_page_count, page_count, read_image_size
from ocrpool.merge import merge_exports
from ocrpool.pool.leases import JobFuture, resolve
from ocrpool.pool.limits import NO_LIMITS, InputLimits
from ocrpool.results import Attempt, OcrResult, Page
from ocrpool.stats import PageProgress

Found = Callable[[tuple[PageSpan, ...], list[Future[OcrResult]]], None]

log = logging.getLogger("ocrpool")


@dataclass(frozen=True)
class PageJobs:
    """How a pool splits documents: ``pages_per_job`` pages a job, for documents of at
    least ``min_pages`` pages, none past the ``limits`` (such a document runs as one job,
    which its worker refuses)."""

    pages_per_job: int
    min_pages: int
    limits: InputLimits = NO_LIMITS


@dataclass(frozen=True)
class Plan:
    """A document to split: its spans, and the temp file bytes were written to (the
    document removes it when it is done)."""

    spans: tuple[PageSpan, ...]
    temp_path: str | None = None


@dataclass(frozen=True, eq=False)
class Split:
    """A path job whose worker counts the pages before it reads the file: from
    ``jobs.min_pages`` pages on it answers with the count, and the pool queues the page
    jobs (``pages``) in the job's place and tells ``found`` their futures before the
    job's own future is set."""

    jobs: PageJobs
    found: Found

    def pages(
        self, path: str, label: str, total: int, stamp: tuple[int, ...] | None
    ) -> list[tuple[PageSpan, str]]:
        """The page jobs of the ``total`` pages at ``path``, each with its label."""
        spans = spans_of(path, total, stamp, self.jobs.pages_per_job)
        return [(span, span_label(label, span)) for span in spans]


def spans_of(
    path: str, total: int, stamp: tuple[int, ...] | None, size: int
) -> tuple[PageSpan, ...]:
    """``total`` pages as spans of ``size`` pages (the last one shorter)."""
    return tuple(PageSpan(path, at, min(size, total - at), stamp) for at in range(0, total, size))


def plan(source: Source, jobs: PageJobs | None, folder: str | None = None) -> Plan | None:
    """The page jobs of ``source``, or ``None`` to run it as one job (splitting off, one
    page or too few, a page span already, not a regular file, a file that cannot be
    counted: the engine then reads it whole and says what is wrong; a page past
    the ``limits``: its worker refuses the whole). Counts pages in the
    caller's thread. Bytes are written once, to a file in ``folder`` (the pool's own,
    which a killed pool's successor sweeps; default: the system temp dir); when that
    cannot be written (the pool closed and its folder gone), they run as one job too."""
    if jobs is None or isinstance(source, PageSpan):
        return None
    stamp: Stamp | None = None
    largest: tuple[int, int] | None = None
    if isinstance(source, bytes):
        total = page_count(io.BytesIO(source))
        if jobs.limits.max_pixels and total is not None and total >= jobs.min_pages:
            largest = read_image_size(io.BytesIO(source))
    else:
        layout = file_layout(source, sizes=bool(jobs.limits.max_pixels))
        total, stamp, largest = layout.pages, layout.stamp, layout.largest
    if total is None or total < jobs.min_pages or jobs.limits.refuse(total, largest):
        return None
    temp_path = None
    if isinstance(source, bytes):
        temp_path = _written(source, folder)
        if temp_path is None:
            return None
        path = temp_path
    else:
        path = os.path.abspath(source)
    return Plan(spans_of(path, total, stamp, jobs.pages_per_job), temp_path)


def source_page_count(source: bytes | str) -> int | None:
    """The pages of bytes or of the file at a path, as ``plan`` counts them (``None``: it
    cannot say, and the document runs as one job)."""
    return page_count(io.BytesIO(source)) if isinstance(source, bytes) else file_page_count(source)


def _written(data: bytes, folder: str | None) -> str | None:
    """A new file in ``folder`` holding ``data``; ``None`` (and no file) if it cannot be."""
    try:
        descriptor, path = tempfile.mkstemp(prefix="document-", dir=folder)
    except OSError:
        return None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return None
    return path


def span_label(label: str, span: PageSpan) -> str:
    """A page job's label: the document's, and its pages."""
    numbers = span.numbers
    pages = f"page {numbers[0]}" if span.count == 1 else f"pages {numbers[0]}-{numbers[-1]}"
    return f"{label} [{pages}]"


class PageTally:
    """A pool's ``PageProgress``, kept by its documents from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = PageProgress()

    def add(
        self, documents: int = 0, documents_done: int = 0, pages: int = 0, done: int = 0
    ) -> None:
        with self._lock:
            counts = self._counts
            self._counts = PageProgress(
                counts.documents + documents,
                counts.documents_done + documents_done,
                counts.pages + pages,
                counts.pages_done + done,
            )

    def counts(self) -> PageProgress:
        with self._lock:
            return self._counts


class DocumentFuture(JobFuture):
    """A split document's one future, which knows its page jobs: so that a pool's
    ``cancel(future, kill=True)`` can stop the ones running, not only drop the queued.
    It keeps the ``concurrent.futures`` contract of one job: running once any page has
    left the queue, and ``cancel()`` refused from then on."""

    def __init__(self, page_jobs: int | None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._jobs: list[Future[OcrResult]] = []
        self._expected = page_jobs
        """How many jobs the document has once every one is submitted (``None``: its
        worker has not counted its pages yet)."""
        self._stop: Callable[[Future[OcrResult]], object] | None = None
        """How ``cancel_jobs`` stopped the jobs: a job added after it is stopped so too."""

    def expect(self, jobs: int) -> None:
        """The document's jobs are counted: ``jobs`` in all, those submitted included."""
        with self._lock:
            self._expected = jobs

    def add_job(self, job: Future[OcrResult]) -> None:
        """A job of the document was submitted; one submitted after a cancel is cancelled
        at once (stopped, if the cancel stopped the running ones: a page job queued by
        the supervisor may have started before it was added here)."""
        with self._lock:
            self._jobs.append(job)
            stop = self._stop
        if self.cancelled():
            job.cancel() if stop is None else stop(job)

    def jobs(self) -> tuple[Future[OcrResult], ...]:
        with self._lock:
            return tuple(self._jobs)

    def waits_on_own_thread(self) -> bool:
        """A page left to run on the pool whose thread this is: waiting would stop it
        (its pages done, the merge ends on a thread of its own: waiting is safe)."""
        return any(isinstance(job, JobFuture) and job.waits_on_own_thread() for job in self.jobs())

    def running(self) -> bool:
        """Whether a page has left the queue (running, or done) and the document is not
        done: its pages are its work, the document itself is never set running."""
        return not self.done() and any(
            job.running() or (job.done() and not job.cancelled()) for job in self.jobs()
        )

    def cancel(self) -> bool:
        """Cancel the document (its queued jobs with it) while no job has started; as
        ``Future.cancel``, a running one is left to finish."""
        if self.running() or not super().cancel():
            return False
        for job in self.jobs():
            job.cancel()
        return True

    def cancel_jobs(self, stop: Callable[[Future[OcrResult]], object]) -> bool:
        """Cancel the document even if pages run, then ``stop`` each page job (a pool's
        own cancel, which kills a running one); whether the document was still pending.
        Once every page has come back it is not: only its exports' merge is left, and its
        result is on its way (a cancel then would drop finished work and stop nothing)."""
        with self._lock:
            jobs = tuple(self._jobs)
            counted = self._expected is not None
            if counted and len(jobs) == self._expected and all(job.done() for job in jobs):
                return False
            if counted:
                self._stop = stop
        if not counted:  # one job until its worker counts pages: stopped as one job is,
            return bool(stop(jobs[0]))  # its future ending as that job's (JobCancelled)
        if not super().cancel():
            return False
        for job in self.jobs():
            stop(job)
        return True


class Document:
    """One split document: its page jobs' results as they come, and the caller's future."""

    def __init__(
        self,
        label: str,
        plan: Plan,
        raises: bool,
        exports: tuple[ExportFormat, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        tally: PageTally | None = None,
        counted: Uncounted | None = None,
    ) -> None:
        """``counted``: the job whose worker counted the pages, whose future and start
        time the document keeps (else it has a future of its own, started now)."""
        self.label = label
        self.plan = plan
        self.raises = raises
        self.exports = exports
        self.future = DocumentFuture(len(plan.spans)) if counted is None else counted.future
        self._clock = clock
        self._started = clock() if counted is None else counted.started
        self._tried: tuple[Attempt, ...] = ()
        self._lock = threading.Lock()
        self._parts: list[OcrResult | None] = [None] * len(plan.spans)
        self._left = len(plan.spans)
        self._tally = tally or PageTally()
        self._tally.add(documents=1, pages=sum(span.count for span in plan.spans))

    def attach(self, index: int, job: Future[OcrResult]) -> None:
        """The page job of span ``index`` was submitted: its result is kept when it comes."""
        self.future.add_job(job)
        job.add_done_callback(lambda done: self._on_job(index, done))

    def tried(self, attempts: tuple[Attempt, ...]) -> None:
        """Attempts made before the document was split (the count's), which lost their
        worker: they come first in the document's attempts."""
        self._tried = attempts

    def abandon(self, first: int, error: OcrPoolError) -> None:
        """Spans from ``first`` on were never submitted (the pool refused them)."""
        for index in range(first, len(self.plan.spans)):
            self._keep(index, OcrResult(self.label, error=error))

    def _on_job(self, index: int, job: Future[OcrResult]) -> None:
        try:
            result = job.result()
        except CancelledError:
            result = OcrResult(self.label, error=JobCancelled("the document was cancelled"))
        self._keep(index, result)

    def _keep(self, index: int, result: OcrResult) -> None:
        with self._lock:
            if self._parts[index] is not None:
                return
            self._parts[index] = result
            self._left -= 1
            last = self._left == 0
        self._tally.add(done=self.plan.spans[index].count)
        if not last:
            return
        if self.exports and any(part.exports for part in self._results()):
            threading.Thread(target=self._finish, name="ocrpool-document", daemon=True).start()
        else:
            self._finish()

    def _results(self) -> list[OcrResult]:
        return [part for part in self._parts if part is not None]

    def _finish(self) -> None:
        try:
            result = self._assemble()
        except Exception as exc:  # a bug here must not leave the caller waiting forever
            log.exception("assembling %s failed", self.label)
            result = OcrResult(self.label, error=EngineError(f"assembling the document: {exc}"))
        finally:
            if self.plan.temp_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.plan.temp_path)
        self._resolve(result)

    def _assemble(self) -> OcrResult:
        pages: list[Page] = []
        attempts: list[Attempt] = list(self._tried)
        merged: list[tuple[PageSpan, tuple[Export, ...] | None]] = []
        for span, part in zip(self.plan.spans, self._results(), strict=True):
            attempts.extend(part.attempts)
            error = part.error
            if error is None and len(part.pages) != span.count:
                error = EngineError(f"the engine gave {len(part.pages)} pages for {span.count}")
            if error is None:
                pages.extend(part.pages)
                merged.append((span, part.exports))
            else:
                pages.extend(Page(text="", error=error) for _ in range(span.count))
                merged.append((span, None))
        parts = self._results()
        result = OcrResult(
            input=self.label,
            pages=tuple(pages),
            attempts=tuple(attempts),
            worker_pid=parts[-1].worker_pid,
            elapsed_s=self._clock() - self._started,
            rss_mb=max((p.rss_mb for p in parts if p.rss_mb is not None), default=None),
            evaluation_mode=any(p.evaluation_mode for p in parts),
        )
        failed = result.failed_pages
        if len(failed) == len(pages):
            return replace(result, error=pages[0].error)
        if self.exports and any(exports for _, exports in merged):
            result = replace(result, exports=merge_exports(self.exports, merged))
        if failed:
            error = pages_failed(failed, len(pages))
            result = replace(result, error=error)
            error.attach(result)
        return result

    def _resolve(self, result: OcrResult) -> None:
        self._tally.add(documents_done=1)
        if self.future.set_running_or_notify_cancel():
            resolve(self.future, result, raises=self.raises)


class Uncounted:
    """A path its worker counts the pages of (``Split``): one job, whose result is the
    caller's, until the worker finds a document to split; then a ``Document`` of page
    jobs in its place, behind the same future, timed from ``submit``."""

    def __init__(
        self,
        label: str,
        raises: bool,
        exports: tuple[ExportFormat, ...],
        jobs: PageJobs,
        tally: PageTally,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.raises = raises
        self.exports = exports
        self.future = DocumentFuture(None)
        self.split = Split(jobs, self._found)
        self.started = clock()
        self._clock = clock
        self._tally = tally
        self._document: Document | None = None

    def counting(self, job: Future[OcrResult]) -> None:
        """``job`` was submitted with ``split`` (its future never raises)."""
        self.future.add_job(job)
        job.add_done_callback(self._on_counted)

    def _found(self, spans: tuple[PageSpan, ...], jobs: list[Future[OcrResult]]) -> None:
        self.future.expect(1 + len(spans))
        document = Document(
            self.label, Plan(spans), self.raises, self.exports, self._clock, self._tally, self
        )
        self._document = document
        for index, job in enumerate(jobs):
            document.attach(index, job)

    def _on_counted(self, job: Future[OcrResult]) -> None:
        if job.cancelled():  # with the document, or by itself (the pool's cancel of it)
            if self.future.cancel():  # its waiters (``wait``, ``as_completed``) are told
                self.future.set_running_or_notify_cancel()  # now, as an executor tells them
            return
        result = job.result()
        if self._document is not None:  # split: its pages make the result
            self._document.tried(tuple(a for a in result.attempts if a.outcome != "ok"))
        elif self.future.set_running_or_notify_cancel():
            resolve(self.future, result, raises=self.raises)


def pages_failed(failed: tuple[int, ...], total: int) -> PagesFailed:
    numbers = ", ".join(map(str, failed))
    return PagesFailed(
        f"{len(failed)} of {total} pages failed: {numbers}", pages=list(failed), total=total
    )
