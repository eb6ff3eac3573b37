"""The worker process: owns one engine and serves one job at a time.

It never exits on its own while it has work: the supervisor reads every result before
it sends ``Stop``, so a recycle cannot lose or duplicate a result. After each job the
worker checks its own RSS against the soft limit (in-band, as loky does) and, once past
it, declines every further job, so no job starts on a worker already over the limit.
It dies with its parent (parent-death signal, and EOF on its pipe), ignores Ctrl-C (the
supervisor decides what a Ctrl-C means), and dumps its Python stack to its log on a
fatal signal or on SIGTERM, which is how a timed-out job's stack is caught.

The engine starts and warms in a thread of its own, ``warm_nice`` lower in priority, so
a replacement warms on CPU the busy workers do not need; jobs run in the main thread at
the priority the worker was started with (an unprivileged thread may lower its
priority, never raise it back).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import faulthandler
import io
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any

import psutil

from ocrpool.engines import create_engine
from ocrpool.engines.base import Engine, JobOptions, PageSpan, Source
from ocrpool.errors import EngineError, EngineOptionError, InvalidInput, OcrPoolError
from ocrpool.formats import (
    HEADER_BYTES,
    FileId,
    Layout,
    file_id,
    file_layout,
    page_count,
    read_image_size,
    sniff,
    unchanged,
)
from ocrpool.pool.limits import InputLimits
from ocrpool.pool.protocol import (
    Ack,
    Declined,
    Job,
    Outcome,
    Pages,
    Ready,
    Spilled,
    StartFailed,
    Stop,
    WorkerSpec,
    pending_bytes,
)
from ocrpool.processes import MB, redirect_stdio
from ocrpool.results import Recognition

_PR_SET_PDEATHSIG = 1


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a worker process."""
    log = redirect_stdio(spec.stderr_path)
    _let_the_fork_server_go()
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable(file=log, all_threads=True)
    faulthandler.register(signal.SIGTERM, file=log, all_threads=True, chain=True)
    rss = OwnRss()

    started = time.monotonic()
    engine, failure = _start_engine(spec)
    if engine is None:
        conn.send(failure)
        sys.exit(1)
    warm_rss = rss.mb()
    conn.send(Ready(warm_rss, time.monotonic() - started))
    rss_limit = spec.max_rss_mb
    if rss_limit is not None and spec.rss_relative:
        rss_limit += warm_rss
    _serve(conn, engine, rss, rss_limit, spec.limits)
    engine.close()


def _start_engine(spec: WorkerSpec) -> tuple[Engine | None, StartFailed | None]:
    """Create, start and warm the engine in a low-priority thread."""
    outcome: list[Engine | StartFailed] = []

    def start() -> None:
        if spec.warm_nice:
            _lower_priority(spec.warm_nice)
        constructed = False
        try:
            engine = create_engine(spec.engine, spec.engine_options)
            constructed = True
            engine.start()
            outcome.append(engine)
        except BaseException as exc:
            option = exc.option if isinstance(exc, EngineOptionError) else None
            if not constructed and isinstance(exc, (TypeError, ValueError)):
                option = ""
            named = isinstance(exc, EngineOptionError)  # its message says what is wrong
            error = str(exc) if named else f"{type(exc).__name__}: {exc}"
            outcome.append(StartFailed(error, traceback.format_exc(), option))

    thread = threading.Thread(target=start, name="ocrpool-warm-up")
    thread.start()
    thread.join()
    (result,) = outcome
    return (None, result) if isinstance(result, StartFailed) else (result, None)


def _lower_priority(by: int) -> None:
    """Add ``by`` to this thread's nice value (19 at most). Relative, never a fixed value:
    a worker started niced past it (``nice -n 15 ocrpool run``, a Ray actor's nice 15)
    may not raise its priority unprivileged (the start failed), nor should its warm-up
    outrank its jobs. A sandbox that refuses it costs the warm-up its lower priority, not
    the start."""
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        nice = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, nice + by))


def _serve(
    conn: Connection,
    engine: Engine,
    own_rss: OwnRss,
    rss_limit: float | None,
    limits: InputLimits,
) -> None:
    over_limit = False
    message: Job | Stop | None = None
    acked = False  # ``message`` was acknowledged in the last Outcome
    while True:
        if message is None:
            try:
                message = conn.recv()
            except EOFError:
                return
        if isinstance(message, Stop):
            return
        job, message = message, None
        if over_limit:
            conn.send(Declined(job.job_id))
            continue
        if not acked:
            conn.send(Ack(job.job_id))
        counted = time.monotonic()
        layout = _layout(job, limits)
        pages = _pages_to_split(job, layout, limits)
        if pages is None:
            recognition, error, elapsed = _run(engine, job, layout, limits)
        else:
            recognition, error, elapsed = None, None, time.monotonic() - counted
        rss = own_rss.mb()
        over_limit = rss_limit is not None and rss >= rss_limit
        waiting = conn.recv() if not over_limit and pending_bytes(conn) else None
        following = waiting.job_id if isinstance(waiting, Job) else None
        outcome = Outcome(
            job.job_id, recognition, error, rss, elapsed, over_limit, following, pages
        )
        _send_outcome(conn, outcome)
        message, acked = waiting, following is not None


def _send_outcome(conn: Connection, outcome: Outcome) -> None:
    """Send ``outcome``; one that cannot be pickled (an engine's result or error holding
    something that does not pickle) goes as that job's ``EngineError`` instead.
    ``Connection.send`` pickles before it writes, so the failed one left nothing behind."""
    try:
        conn.send(outcome)
    except (OSError, EOFError):
        raise
    except Exception as exc:
        error = EngineError(f"the job's result could not be sent: {type(exc).__name__}: {exc}")
        conn.send(dataclasses.replace(outcome, recognition=None, error=error))


def _layout(job: Job, limits: InputLimits) -> Layout | None:
    """What the worker reads of a path's file before its engine does: its pages if it may
    be split (``split_from``) or there is a page limit, its largest page if there is a
    pixel limit. ``None`` for bytes and spans, and when reading it fails in a way
    ``file_layout`` does not expect (a PDF whose page tree is nested past Python's
    recursion limit, say): the engine then reads it whole and says what is wrong."""
    counted = job.split_from is not None or bool(limits.max_pages)
    if not isinstance(job.source, str) or not (counted or limits.max_pixels):
        return None
    try:
        return file_layout(job.source, sizes=bool(limits.max_pixels), pdf_pages=counted)
    except Exception:
        return None


def _pages_to_split(job: Job, layout: Layout | None, limits: InputLimits) -> Pages | None:
    """The ``Pages`` of a ``split_from`` job's file if it holds enough to split; ``None``
    to read it whole (one page, too few, not a regular file, too broken to count: the
    engine then says what is wrong; past the ``limits``: ``_run`` refuses it)."""
    if job.split_from is None or layout is None or layout.pages is None:
        return None
    if layout.pages < job.split_from or limits.refuse(layout.pages, layout.largest):
        return None
    assert isinstance(job.source, str)  # a layout is read of paths only
    return Pages(os.path.abspath(job.source), layout.pages, layout.identity)


def _run(
    engine: Engine, job: Job, layout: Layout | None, limits: InputLimits
) -> tuple[Recognition | None, OcrPoolError | None, float]:
    """Recognise one job: its recognition or its typed error, and how long it took."""
    started = time.monotonic()
    recognition, error = None, None
    try:
        source = _unspilled(job.source)
        _check_limits(source, layout, limits)
        result = _recognize(engine, source, job.options)
        _check_read_unchanged(source, layout, limits)
        if not isinstance(result, Recognition):
            kind = type(result).__name__
            raise EngineError(f"the engine returned a {kind}, not an ocrpool Recognition")
        recognition = result
    except OcrPoolError as exc:
        error = exc
    except Exception as exc:
        error = EngineError(f"{type(exc).__name__}: {exc}")
    return recognition, error, time.monotonic() - started


def _recognize(engine: Engine, source: Source, options: JobOptions | None) -> Recognition:
    """The engine's result, with the job's own settings when it has any."""
    if isinstance(source, PageSpan):
        _check_unchanged(source)
    if options is None:
        return engine.recognize(source)
    if not getattr(engine, "takes_job_options", False):
        raise EngineError(f"the {type(engine).__name__} takes no per-job settings")
    recognize: Any = engine.recognize
    result: Recognition = recognize(source, options)
    return result


def _check_limits(source: Source, layout: Layout | None, limits: InputLimits) -> None:
    """``ImageTooLarge`` or ``DocumentTooLong`` for an input past the ``limits``, read
    from the file (or bytes) the engine is about to read, whatever the caller checked
    before. A span is not read again: its document was checked when it was counted, and
    a changed file fails ``_check_unchanged``."""
    if isinstance(source, PageSpan) or not (limits.max_pixels or limits.max_pages):
        return
    if isinstance(source, bytes):
        pages = page_count(io.BytesIO(source)) if limits.max_pages else None
        largest = read_image_size(io.BytesIO(source)) if limits.max_pixels else None
        limits.check(sniff(source[:HEADER_BYTES]), pages, largest, input=None)
    elif layout is not None:
        limits.check(layout.format, layout.pages, layout.largest, input=source)


def _check_read_unchanged(source: Source, layout: Layout | None, limits: InputLimits) -> None:
    """``InvalidInput`` if the file the engine was given by name is no longer the one the
    worker checked (``Layout.identity``; a span's, the one its document was split from):
    replaced, by rename or link, or written to, between the check and the end of the
    read, the engine may have read another, past the limits or mixed. Its result is not
    kept. A whole file is checked only under a limit, for which this check is made: it
    costs a ``stat`` a job (about 2 µs)."""
    if isinstance(source, PageSpan):
        _check_unchanged(source)
        return
    if not (limits.max_pixels or limits.max_pages):
        return
    if not isinstance(source, str) or layout is None or layout.identity is None:
        return
    try:
        now: FileId | None = file_id(os.stat(source))
    except OSError:
        now = None
    if now != layout.identity:
        raise InvalidInput(
            "the file was replaced or changed while it was read (run it again once it "
            "stays the same)",
            input=source,
        )


def _check_unchanged(span: PageSpan) -> None:
    """``InvalidInput`` for a span of a file that is no longer the one its document was
    split from (``PageSpan.stamp``): its pages would come back mixed from two files."""
    if not unchanged(span.path, span.stamp):
        raise InvalidInput(
            "the file was replaced or changed after it was split into page jobs",
            input=span.path,
        )


def _unspilled(source: Source | Spilled) -> Source:
    """The job's input as the engine takes it: spilled bytes read back (and their file
    removed; a retry elsewhere gets a new one)."""
    if not isinstance(source, Spilled):
        return source
    with open(source.path, "rb") as handle:
        data = handle.read()
    os.unlink(source.path)
    return data


class OwnRss:
    """This process's resident memory, read after every job; not ``ru_maxrss``, which a
    forked child inherits. On Linux one ``pread`` of ``/proc/self/statm`` through a
    descriptor kept open (about 2 µs, where psutil opens and parses the file each time,
    about 16 µs: a tenth of a no-op job's cost in the worker); psutil elsewhere."""

    def __init__(self) -> None:
        try:
            self._statm: int | None = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._statm = None
            self._process = psutil.Process()

    def mb(self) -> float:
        if self._statm is None:
            rss: int = self._process.memory_info().rss
            return rss / MB
        return int(os.pread(self._statm, 128, 0).split()[1]) * _PAGE_SIZE / MB


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _let_the_fork_server_go() -> None:
    """Close our copy of the fork server's liveness pipe.

    multiprocessing hands every forked child the write end whose closing tells the fork
    server its client died. Kept, it would keep the server alive after a SIGKILLed
    supervisor, and the server's death is what sends this worker its parent-death signal.
    """
    server = forkserver._forkserver
    fd: int | None = server._forkserver_alive_fd  # type: ignore[attr-defined]
    if fd is not None:
        os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[attr-defined]


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL us when our parent (the supervisor, or the fork server that
    exits with it) dies; a parent already gone shows as EOF on the pipe."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
