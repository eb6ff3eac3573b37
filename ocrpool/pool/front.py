"""The Executor-like surface every pool shares, built on the few calls a pool provides.

A pool (the local ``OcrPool``, the Ray backend's ``RayOcrPool``) implements ``_submit``,
``_stats``, ``close``, ``shutdown`` and its ``window``; ``submit``, ``submit_result``,
``recognize``, ``imap``/``map``, their asyncio forms and the ``with`` block come from
here, so both pools keep one contract.
"""

from __future__ import annotations

import asyncio
import dataclasses
import numbers
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TypeVar

from ocrpool.engines.base import JobOptions, PageSpan, Source
from ocrpool.errors import InvalidInput, OcrPoolError
from ocrpool.exports import ExportFormat
from ocrpool.merge import MERGEABLE
from ocrpool.pool.documents import (
    Document,
    PageJobs,
    PageTally,
    Split,
    Uncounted,
    plan,
    span_label,
)
from ocrpool.pool.leases import JobFuture, refuse_wait
from ocrpool.results import OcrResult
from ocrpool.stats import PoolStats

PathOrSource = Source | os.PathLike[str]
WAITING_S = 0.5
PATH_MAX = 4096
"""Bytes in the longest path Linux opens, its NUL included. A longer one is refused in the
caller's process: it could not be read anyway, and its message could fill the pipe of a
worker busy with a hung job, and block the pool."""
"""How often ``imap`` calls its ``waiting`` while no result comes."""
_Pool = TypeVar("_Pool", bound="PoolFront")


class PoolFront(ABC):
    """``recognize``/``imap``/``map``/``aimap`` and ``with`` over a pool's own calls."""

    def __init__(self) -> None:
        self._page_tally = PageTally()

    @property
    @abstractmethod
    def window(self) -> int:
        """How many jobs ``imap`` and ``aimap`` keep submitted at once."""

    @abstractmethod
    def _submit(
        self, source: Source, label: str, raises: bool, options: JobOptions | None
    ) -> Future[OcrResult]:
        """Queue one normalised input; ``raises``: the future raises the job's error,
        else it holds an ``OcrResult`` either way. May raise (a closed or broken pool)."""

    def _page_jobs(self, source: Source) -> PageJobs | None:
        """How this pool splits ``source`` into page jobs; ``None``: it does not."""
        return None

    _workers_count_pages = False
    """Whether this pool's workers count a path's pages (``_submit_counting``); else the
    pages are counted here, in the caller's thread."""

    def _submit_counting(
        self, path: str, label: str, options: JobOptions | None, split: Split
    ) -> Future[OcrResult]:
        """Queue ``path`` for a worker that counts its pages first (``Split``); its future
        never raises."""
        raise NotImplementedError

    def _export_formats(self) -> tuple[ExportFormat, ...]:
        """The exports the engine renders, which a split document's page jobs merge."""
        return ()

    def _document_folder(self) -> str | None:
        """Where a split document given as bytes is written (``None``: the temp dir)."""
        return None

    def submit(
        self,
        source: PathOrSource,
        *,
        label: str | None = None,
        options: JobOptions | None = None,
    ) -> Future[OcrResult]:
        """Queue one input; the future gives its ``OcrResult`` or raises its typed error.
        A multi-page document may run as page jobs on several workers: one future still.
        ``options`` are this job's own settings (language, exports...) over the engine's."""
        data, name = normalise(source, label)
        return self._submit_document(data, name, raises=True, options=options)

    def _submit_document(
        self, source: Source, label: str, raises: bool, options: JobOptions | None = None
    ) -> Future[OcrResult]:
        """One job, or a document of page jobs each through ``_submit`` (so the lease
        book, retries, quarantine and quotas count pages), counted here or, for a path on
        a pool whose workers count pages, by the worker that takes it. A job's own
        exports are merged like the engine's; one that cannot be merged keeps its
        document in one job."""
        if options is not None and not isinstance(options, JobOptions):
            raise TypeError(f"options must be a JobOptions, not {type(options).__name__}")
        path = source.path if isinstance(source, PageSpan) else source
        if isinstance(path, str) and (refusal := _unopenable(path)) is not None:
            return _settled(InvalidInput(refusal, input=label), label, raises)
        exports = self._export_formats()
        jobs = self._page_jobs(source)
        if options is not None and options.exports is not None:
            exports = options.exports
            if not set(exports) <= MERGEABLE:
                jobs = None
        if isinstance(source, str) and jobs is not None and self._workers_count_pages:
            uncounted = Uncounted(label, raises, exports, jobs, self._page_tally)
            uncounted.counting(self._submit_counting(source, label, options, uncounted.split))
            return uncounted.future
        split = plan(source, jobs, self._document_folder())
        if split is None:
            return self._submit(source, label, raises, options)
        document = Document(label, split, raises, exports, tally=self._page_tally)
        for index, span in enumerate(split.spans):
            try:
                job = self._submit(span, span_label(label, span), False, options)
            except OcrPoolError as error:
                if index == 0:
                    document.abandon(0, error)  # removes the temp file
                    raise
                document.abandon(index, error)
                break
            document.attach(index, job)
        return document.future

    def submit_result(
        self,
        source: PathOrSource,
        *,
        label: str | None = None,
        options: JobOptions | None = None,
    ) -> Future[OcrResult]:
        """Queue one input; the future always holds an ``OcrResult``, even when the pool
        refuses it (what ``imap`` uses; for callers that record failures, not raise them)."""
        data, name = normalise(source, label)
        try:
            return self._submit_document(data, name, raises=False, options=options)
        except OcrPoolError as error:
            return _settled(error, name, raises=False)

    def stats(self) -> PoolStats:
        """The pool's counts, with the pages of the documents it split (``pages``)."""
        return dataclasses.replace(self._stats(), pages=self._page_tally.counts())

    @abstractmethod
    def _stats(self) -> PoolStats:
        """The pool's own counts (jobs, workers, exits)."""

    @abstractmethod
    def close(self) -> None:
        """Finish every queued job, then stop."""

    @abstractmethod
    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None: ...

    def recognize(
        self,
        source: PathOrSource,
        *,
        label: str | None = None,
        options: JobOptions | None = None,
    ) -> OcrResult:
        """OCR one input and wait for it; raises the job's typed error."""
        return self.submit(source, label=label, options=options).result()

    def imap(
        self,
        sources: Iterable[PathOrSource],
        *,
        ordered: bool = True,
        waiting: Callable[[], object] | None = None,
    ) -> Iterator[OcrResult]:
        """OCR every input, keeping at most ``window`` submitted at once.

        Never raises for one input: failures come back as results with ``ok`` false.
        ``sources`` is consumed lazily, so a generator of millions keeps memory flat.
        ``waiting``, if given, is called in the caller's thread every ``WAITING_S`` that
        passes without a result (a progress display's tick, while a long document runs).
        Closed early (a ``break``, an error in the loop or in ``sources``), it cancels the
        jobs it submitted that have not started, as ``Executor.map`` does.
        """
        pending: deque[Future[OcrResult]] = deque()
        _refuse_one_source(sources)
        if waiting is not None and not callable(waiting):  # else a TypeError once a job is slow
            raise TypeError(f"waiting must be callable or None, not {type(waiting).__name__}")
        try:
            for source in sources:
                pending.append(self.submit_result(source))
                if len(pending) >= self.window:
                    yield _take(pending, ordered, waiting)
            while pending:
                yield _take(pending, ordered, waiting)
        finally:
            for future in pending:
                future.cancel()

    def map(self, sources: Iterable[PathOrSource]) -> Iterator[OcrResult]:
        """``imap`` in input order, as ``Executor.map`` users expect."""
        return self.imap(sources, ordered=True)

    async def arecognize(
        self,
        source: PathOrSource,
        *,
        label: str | None = None,
        options: JobOptions | None = None,
    ) -> OcrResult:
        """``recognize`` for asyncio: awaits without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(source, label=label, options=options))

    async def aimap(
        self, sources: Iterable[PathOrSource], *, ordered: bool = False
    ) -> AsyncIterator[OcrResult]:
        """``imap`` for asyncio, with the same window, the same never-raise rule, and the
        same cancel of jobs not started when it is closed early (``aclose()``, or
        ``contextlib.aclosing`` around the loop; its task cancelled)."""
        pending: deque[asyncio.Future[OcrResult]] = deque()
        _refuse_one_source(sources)
        try:
            for source in sources:
                pending.append(asyncio.wrap_future(self.submit_result(source)))
                if len(pending) >= self.window:
                    yield await _atake(pending, ordered)
            while pending:
                yield await _atake(pending, ordered)
        finally:
            for future in pending:
                future.cancel()

    def __enter__(self: _Pool) -> _Pool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.shutdown(cancel_pending=exc_type is not None)


def _refuse_one_source(sources: object) -> None:
    """``TypeError`` for one path or one input's bytes given where many go: iterated, a
    path is its characters, each a job that fails, and bytes are numbers."""
    if isinstance(sources, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            f"expected an iterable of sources, not one {type(sources).__name__}: "
            "wrap it in a list, or use submit() or recognize()"
        )


def _take(
    pending: deque[Future[OcrResult]], ordered: bool, waiting: Callable[[], object] | None
) -> OcrResult:
    """The next result: the oldest, or (unordered) the first to finish."""
    watched = pending if not ordered else (pending[0],)
    own = any(isinstance(future, JobFuture) and future.waits_on_own_thread() for future in watched)
    if own and not any(future.done() for future in watched):
        refuse_wait()
    while waiting is not None and not wait(watched, WAITING_S, FIRST_COMPLETED).done:
        waiting()
    if not ordered:
        wait(pending, return_when=FIRST_COMPLETED)
        for future in pending:
            if future.done():
                pending.remove(future)
                return future.result()
    return pending.popleft().result()


async def _atake(pending: deque[asyncio.Future[OcrResult]], ordered: bool) -> OcrResult:
    if not ordered:
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for future in pending:
            if future.done():
                pending.remove(future)
                return future.result()
    return await pending.popleft()


def _unopenable(path: str) -> str | None:
    """Why the system could not open ``path`` whatever the file system holds, if so."""
    if "\0" in path:
        return "a path cannot hold a NUL character"
    if len(path.encode(errors="surrogatepass")) >= PATH_MAX:
        return f"path too long: the system opens {PATH_MAX - 1} bytes at most"
    return None


def _in_callers_folder(path: str) -> str:
    """``path`` made absolute in the caller's folder, where it names a file as it is
    submitted: a worker resolves what it is sent in its own folder (where the pool's
    first worker started: another once the caller has moved), and a Ray actor in its
    node's. As given if that folder is gone, or if the absolute path is too long to open
    where the relative one is not."""
    if os.path.isabs(path):
        return path
    try:
        absolute = os.path.abspath(path)
    except OSError:
        return path
    return path if _unopenable(absolute) and not _unopenable(path) else absolute


def _settled(error: OcrPoolError, label: str, raises: bool) -> Future[OcrResult]:
    """A job's future that already holds its error, for a job that never reaches a worker."""
    future: Future[OcrResult] = Future()
    if raises:
        future.set_exception(error)
    else:
        future.set_result(OcrResult(input=label, error=error))
    return future


def normalise(source: PathOrSource, label: str | None) -> tuple[Source, str]:
    """The source as a pool sends it (a path string, bytes, or a page span another pool
    split off) and the label results carry."""
    if isinstance(label, os.PathLike):
        label = os.fspath(label)
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a str, not {type(label).__name__}")
    if isinstance(source, PageSpan):
        span = _checked_span(source)
        return span, label or span_label(span.path, span)
    # plain str and bytes even for subclasses: a subclass pickles by reference to its
    # class, which a worker may not be able to import
    if isinstance(source, bytes):
        return bytes(source), label or f"<{len(source)} bytes>"
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not isinstance(path, str):
            raise TypeError(f"expected a path as str, not {type(path).__name__}")
        return _in_callers_folder(str(path)), label or str(path)
    raise TypeError(f"expected a path or bytes, not {type(source).__name__}")


def _checked_span(span: PageSpan) -> PageSpan:
    """``span`` as a worker reads it; ``TypeError``/``ValueError`` for one no worker could
    (else a negative start read pages counted back from the end, and no page at all
    failed as an ``IndexError``; a float was cut down to a page number)."""
    path = os.fspath(span.path)
    if not isinstance(path, str):
        raise TypeError(f"a PageSpan's path must be a str, not {type(path).__name__}")
    start, count = _whole("start", span.start), _whole("count", span.count)
    if start < 0 or count < 1:
        raise ValueError(
            f"a PageSpan starts at page 0 or later and holds at least 1 page, not "
            f"start={start}, count={count}"
        )
    stamp = None if span.stamp is None else tuple(int(part) for part in span.stamp)
    return PageSpan(str(path), start, count, stamp)  # plain str, as ``normalise`` says why


def _whole(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"a PageSpan's {name} must be an integer, not {value!r}")
    return int(value)
