"""The batch run: scan -> admit -> ledger -> pool -> sink, one input at a time.

::

    scan --Found--> stat --> ledger.claim --NEW/RETRY--> admit --Format--> pool.imap
     |               |           |                         |                  |
    Skipped     InvalidInput    DONE, FAILED_BEFORE,   InvalidInput        OcrResult
     |               |          DUPLICATE              or Skipped             |
     v               v           v                         v                  v
    counted        Record       counted             Record or counted       Record

    Record --> exports, then sink.write (shielded from stop signals) --> tally --> progress

Everything runs in the caller's thread: ``OcrPool.imap`` pulls the scan generator lazily,
so the scan, the writes and the tally never race. A stop (Ctrl-C, SIGTERM, or
``max_failures`` records in a row that failed) lands between records; the pool is then
shut down with its queued jobs cancelled, and the inputs it had not answered are simply
not recorded, so the next run does them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, TextIO

from ocrpool.batch.admission import admit, stat_input
from ocrpool.batch.errors import InputNotFound, OutputFailed, OutputNameRefused, OutputRefused
from ocrpool.batch.exports import ExportFolder, default_export_dir
from ocrpool.batch.ledger import Ledger
from ocrpool.batch.outpath import check_output, own_paths, under_any
from ocrpool.batch.progress import Clock, Progress, Silent
from ocrpool.batch.records import InputFile, Record
from ocrpool.batch.scan import (
    LIST_CHUNK,
    Discovery,
    Skipped,
    is_pattern,
    read_list,
    scan_arguments,
    scan_list,
)
from ocrpool.batch.sinks import STDOUT, OutputFormat, Sink, open_sink, sidecars
from ocrpool.batch.summary import Summary, Tally
from ocrpool.batch.txt import RECORDS_NAME
from ocrpool.errors import (
    EmptyPages,
    EngineStartError,
    InvalidInput,
    OcrPoolError,
    OutOfResources,
    PoolClosed,
)
from ocrpool.exports import ExportFormat
from ocrpool.formats import DEFAULT_MAX_PIXELS, Format
from ocrpool.results import OcrResult
from ocrpool.stats import PoolStats

STATS_INTERVAL_S = 0.5
"""How often the tally copies the pool's worker exits, RSS and the pages of its split
documents (for the progress display)."""


class Pool(Protocol):
    """What the runner needs of ``ocrpool.OcrPool`` (tests may pass their own)."""

    def imap(
        self,
        sources: Iterable[str],
        *,
        ordered: bool = ...,
        waiting: Callable[[], object] | None = ...,
    ) -> Iterator[OcrResult]: ...

    def stats(self) -> PoolStats: ...

    def close(self) -> None: ...

    def shutdown(self, wait: bool = ..., *, cancel_pending: bool = ...) -> None: ...


PoolFactory = Callable[[], Pool]
Guard = Callable[[], AbstractContextManager[None]]


@dataclass(frozen=True)
class BatchOptions:
    out: str
    inputs: tuple[str, ...] = ()
    from_list: str | None = None
    """A file of paths, one per line; ``-`` reads standard input."""
    list_separator: str = "\n"
    """What separates the paths of ``from_list``: ``"\\0"`` reads ``find -print0``."""
    format: OutputFormat = OutputFormat.JSONL
    detail: bool = False
    strict: bool = False
    """Report files that are not inputs, and inputs with a page without text, as failures."""
    retry_failed: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    allow_out_inside_input: bool = False
    exports: tuple[ExportFormat, ...] = ()
    """The formats the pool's engine exports (its option ``exports``): written to files."""
    export_dir: str | None = None
    """Where exports go (mirroring input paths); default ``default_export_dir(out)``."""
    max_failures: int | None = None
    """Stop the run once this many inputs in a row have failed (a success resets the
    count); ``None``: never."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Stored with the run (the SQLite ``runs`` table): e.g. the pool's options."""

    def __post_init__(self) -> None:
        """Checked here as the command line checks them: a negative ``max_pixels`` would
        refuse every image as too large, a ``max_failures`` under 1 stop at the first
        record, however it went."""
        if self.max_pixels is not None and self.max_pixels < 0:
            raise ValueError("max_pixels must be 0 or more (0: no limit)")
        if self.max_failures is not None and self.max_failures < 1:
            raise ValueError("max_failures must be at least 1")

    @property
    def export_folder(self) -> str | None:
        """Where this run writes exports, if it exports."""
        if not self.exports:
            return None
        return self.export_dir or default_export_dir(self.out)


def run_batch(
    options: BatchOptions,
    pool_factory: PoolFactory,
    *,
    progress: Progress | None = None,
    clock: Clock = time.monotonic,
    stdin: TextIO | None = None,
    guard: Guard = contextlib.nullcontext,
) -> Summary:
    """OCR every input of ``options`` not already recorded in its output, and record it.

    The pool is created only once there is something to OCR. ``guard`` wraps each write
    (``StopSignals.shielded`` defers a stop until the record is whole). Raises
    ``BatchError`` before writing anything when the inputs or the output are unusable,
    ``EngineStartError`` when the engine cannot start, and ``OutputFailed`` when the
    output cannot be written mid-run (the records written are whole; a rerun resumes).
    """
    for argument in options.inputs:
        if not os.path.lexists(argument) and not is_pattern(argument):
            raise InputNotFound(f"no such file or folder: {argument}")
    excluded: frozenset[str] = frozenset()
    if options.out == STDOUT:
        if options.format is not OutputFormat.JSONL:
            raise OutputRefused(f"--out - writes JSON Lines only, not {options.format.value}")
        if options.exports and options.export_dir is None:
            raise OutputRefused("exports with --out - need --export-dir")
    else:
        allowed = options.allow_out_inside_input
        check_output(options.out, options.inputs, allow_inside_input=allowed)
        excluded = own_paths(options.out, sidecars(options.format))
    export_dir = options.export_folder
    if export_dir is not None:
        allowed = options.allow_out_inside_input
        check_output(export_dir, options.inputs, allow_inside_input=allowed)
        _check_apart(options, export_dir)
        excluded |= own_paths(export_dir)
    exclude = under_any(excluded)
    with contextlib.ExitStack() as stack:
        discoveries: Iterable[Discovery] = scan_arguments(options.inputs, exclude)
        if options.from_list is not None:
            if stdin is not None and options.from_list == "-":
                chunks: Iterable[str] = iter(functools.partial(stdin.read, LIST_CHUNK), "")
            else:
                name = _stdin_fd() if options.from_list == "-" else options.from_list
                listing = stack.enter_context(_open_list(name))
                _check_list_apart(options, listing)
                chunks = read_list(listing)
            listed = scan_list(chunks, exclude, separator=options.list_separator)
            discoveries = itertools.chain(discoveries, listed)
        sink = open_sink(
            options.format, options.out, detail=options.detail, options=_run_options(options)
        )
        exports = frozenset(fmt.value for fmt in options.exports)
        ledger = Ledger(retry_failed=options.retry_failed, exports=exports)
        stack.callback(ledger.close)
        try:
            folder = None if export_dir is None else ExportFolder(export_dir)
            ledger.load(sink.replay())
            run = _Run(options, sink, ledger, folder, progress or Silent(), clock, guard)
            summary = run.run(discoveries, pool_factory)
        except BaseException:
            with contextlib.suppress(OutputFailed):  # the error already on its way says more
                sink.close_failed()
            raise
        sink.close(summary.to_dict())
        return summary


class _Run:
    """One run's state; everything happens in the caller's thread."""

    def __init__(
        self,
        options: BatchOptions,
        sink: Sink,
        ledger: Ledger,
        export_folder: ExportFolder | None,
        progress: Progress,
        clock: Clock,
        guard: Guard,
    ) -> None:
        self.options = options
        self.sink = sink
        self.ledger = ledger
        self.export_folder = export_folder
        self.progress = progress
        self.clock = clock
        self.guard = guard
        self.tally = Tally()
        self.in_flight: dict[str, tuple[InputFile, str]] = {}
        self.started = clock()
        self.stats_due = self.started
        self.failures_in_a_row = 0

    def run(self, discoveries: Iterable[Discovery], pool_factory: PoolFactory) -> Summary:
        interrupted = False
        stopped_after = None
        try:
            sources = self._sources(discoveries)
            first = next(sources, None)
            if first is not None:
                self._ocr(itertools.chain([first], sources), pool_factory)
        except KeyboardInterrupt:
            interrupted = True
        except _TooManyFailures as stop:
            stopped_after = stop.failures
        self.progress.close(self.tally)
        elapsed = self.clock() - self.started
        resumable = self.options.out != STDOUT
        return Summary(
            self.tally, elapsed, interrupted, stopped_after=stopped_after, resumable=resumable
        )

    def _ocr(self, sources: Iterator[str], pool_factory: PoolFactory) -> None:
        pool = pool_factory()
        try:
            for result in pool.imap(sources, ordered=False, waiting=lambda: self._tick(pool)):
                source, fmt = self.in_flight.pop(result.input)
                if isinstance(result.error, (EngineStartError, PoolClosed)):
                    raise result.error  # never tried: left unrecorded for the next run
                self._record(self._strict(Record(source, fmt, result)))
                self._copy_stats(pool, force=False)
            pool.close()
        except BaseException:
            pool.shutdown(cancel_pending=True)
            raise
        finally:
            self._copy_stats(pool, force=True)

    def _sources(self, discoveries: Iterable[Discovery]) -> Iterator[str]:
        """The paths to OCR; everything else is recorded or counted on the way."""
        for item in discoveries:
            path = self._take(item)
            if path is not None:
                yield path
        self.tally.scanning = False
        self.progress.update(self.tally)

    def _take(self, item: Discovery) -> str | None:
        if isinstance(item, Skipped):
            source = InputFile(item.path, None, None)
            if not self.options.strict or self._claim(source):
                self._skip(source, item)
            return None
        try:
            info = stat_input(item.path)
        except InvalidInput as error:
            source = InputFile(item.path, None, None)
            if self._claim(source):
                self._record_failure(source, error)
            return None
        source = InputFile(item.path, info.st_size, info.st_mtime)
        if not self._claim(source):
            return None
        try:
            admitted = _admit_when_there_is_room(source.path, info, self.options.max_pixels)
        except InvalidInput as error:
            self._record_failure(source, error)
            return None
        if isinstance(admitted, Skipped):
            self._skip(source, admitted)
            return None
        self.in_flight[source.path] = (source, admitted.value)
        self.tally.queued += 1
        self.progress.update(self.tally)
        return source.path

    def _claim(self, source: InputFile) -> bool:
        """Take ``source`` for this run, unless it is done or taken already (then counted)."""
        verdict = self.ledger.claim(source)
        if not verdict.todo:
            self.tally.earlier[verdict] += 1
            self.progress.update(self.tally)
        return verdict.todo

    def _skip(self, source: InputFile, skipped: Skipped) -> None:
        """Count a file that is not an input; with ``strict`` (and claimed), record it."""
        if self.options.strict:
            self._record_failure(source, InvalidInput(skipped.message, input=skipped.path))
        else:
            self.tally.skipped[skipped.reason.value] += 1

    def _record_failure(self, source: InputFile, error: InvalidInput) -> None:
        """Record an input refused before reaching the engine."""
        self.tally.queued += 1
        self._record(Record.failure(source, None, error))

    def _strict(self, record: Record) -> Record:
        """With ``strict``, an input with pages without text fails (``EmptyPages``)."""
        empty = record.empty_pages
        if not (self.options.strict and record.ok and empty):
            return record
        numbers = ", ".join(map(str, empty))
        return _failed(record, EmptyPages(f"no text on page {numbers} (--strict)", pages=empty))

    def _record(self, record: Record) -> None:
        """Write ``record``, after its exports when it is OK or partial (a failed page is
        its original image in a merged PDF); a stop waits for both. An input whose own
        file's name the system refuses is recorded as failed with ``OutputNameRefused``."""
        with self.guard():
            try:
                record = self._export(record)
                self.sink.write(record)
            except OutputNameRefused as error:
                record = _failed(dataclasses.replace(record, exports={}), error)
                self.sink.write(record)
            self.tally.add(record)
        self.progress.update(self.tally)
        self.failures_in_a_row = 0 if record.ok else self.failures_in_a_row + 1
        limit = self.options.max_failures
        if limit is not None and self.failures_in_a_row >= limit:
            raise _TooManyFailures(self.failures_in_a_row)

    def _export(self, record: Record) -> Record:
        """``record`` listing its exports, once they are written."""
        exports = record.result.exports
        if not ((record.ok or record.partial) and exports and self.export_folder is not None):
            return record
        written = self.export_folder.write(record.input.path, exports)
        return dataclasses.replace(record, exports=written)

    def _tick(self, pool: Pool) -> None:
        """No result for a while (a long document's pages are running): its pages show.
        Also where a stop that landed while the pool was waited on is raised (``guard``
        ends with it)."""
        with self.guard():
            pass
        self._copy_stats(pool, force=False)
        self.progress.update(self.tally)

    def _copy_stats(self, pool: Pool, *, force: bool) -> None:
        now = self.clock()
        if not force and now < self.stats_due:
            return
        self.stats_due = now + STATS_INTERVAL_S
        stats = pool.stats()
        self.tally.worker_exits = dict(stats.exits)
        self.tally.split = stats.pages
        for worker in stats.workers:
            self.tally.see_rss(worker.rss_mb)


class _TooManyFailures(Exception):
    """``max_failures`` records in a row failed: the run stops as on a stop signal."""

    def __init__(self, failures: int) -> None:
        super().__init__(f"{failures} inputs in a row failed")
        self.failures = failures


_ROOM_WAITS_S = (0.25, 0.5, 1.0, 2.0)
"""Pauses before admission tries an input again that this process was too short of
descriptors or memory to read: the pool's own starts hold some for a moment."""


def _admit_when_there_is_room(
    path: str, info: os.stat_result, max_pixels: int | None
) -> Format | Skipped:
    """``admit``, tried again after each pause while this process is short of descriptors
    or memory; past the last, ``OutOfResources`` stops the run with the input unrecorded
    (a failure recorded for it would be the process's fault pinned on the input)."""
    for wait_s in _ROOM_WAITS_S:
        try:
            return admit(path, info, max_pixels=max_pixels)
        except OutOfResources:
            time.sleep(wait_s)
    return admit(path, info, max_pixels=max_pixels)


def _failed(record: Record, error: OcrPoolError) -> Record:
    """``record`` failed with ``error``; the pages that came back stay in it."""
    return dataclasses.replace(record, result=dataclasses.replace(record.result, error=error))


def _check_apart(options: BatchOptions, export_dir: str) -> None:
    """``--format txt`` and ``--export txt`` in one folder would write each input's text
    and its export to the same file, one over the other."""
    if (
        options.format is OutputFormat.TXT
        and ExportFormat.TXT in options.exports
        and os.path.realpath(export_dir) == os.path.realpath(options.out)
    ):
        raise OutputRefused(
            f"--export txt into the --format txt folder {options.out} would write each "
            "text and its export to the same file: give --export-dir another folder"
        )


def _check_list_apart(options: BatchOptions, listing: BinaryIO) -> None:
    """Refuse a list that is the file this run appends its records to: each record would
    be read back as one more path, which fails and is recorded, without end until the
    disk is full."""
    if options.out == STDOUT:
        return
    records = options.out
    if options.format is OutputFormat.TXT:
        records = os.path.join(options.out, RECORDS_NAME)
    try:
        own = os.stat(records)
    except OSError:  # not there yet: the run creates it, so the list is another file
        return
    listed = os.fstat(listing.fileno())
    if (listed.st_dev, listed.st_ino) == (own.st_dev, own.st_ino):
        raise OutputRefused(
            f"refusing to read the list {options.from_list}: it is the output {records}, "
            "whose records the run would read back as paths"
        )


def _stdin_fd() -> int:
    """Standard input's descriptor, or ``InputNotFound`` when the process started with it
    closed (``sys.stdin`` is then ``None``, and descriptor 0 may be another file's)."""
    if sys.stdin is None:
        raise InputNotFound("cannot read the list -: standard input is closed")
    return sys.stdin.fileno()


def _open_list(path: str | int) -> BinaryIO:
    """The list's bytes, each read as soon as it comes (a pipe from a slow ``find``)."""
    try:
        return open(path, "rb", buffering=0, closefd=isinstance(path, str))
    except OSError as exc:
        raise InputNotFound(f"cannot read the list {path}: {exc.strerror}") from None


def _run_options(options: BatchOptions) -> dict[str, Any]:
    data = {
        "inputs": list(options.inputs),
        "from_list": options.from_list,
        "out": options.out,
        "format": options.format.value,
        "detail": options.detail,
        "strict": options.strict,
        "retry_failed": options.retry_failed,
        "max_pixels": options.max_pixels,
        "exports": [fmt.value for fmt in options.exports],
        "export_dir": options.export_folder,
        "max_failures": options.max_failures,
    }
    data.update(options.settings)
    return data
