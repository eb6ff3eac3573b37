"""Messages between the supervisor and a worker, one duplex pipe per worker.

Supervisor -> worker: ``Job``, ``Stop``.  Worker -> supervisor: ``Ready`` (engine
started and warm) or ``StartFailed``; then per job ``Ack`` (the job is in the engine's
hands) and ``Outcome``, or ``Declined`` (the worker is past its memory limit and never
started the job). A job sent but never acknowledged was never started. A worker that
finds its next job already waiting acknowledges it in the ``Outcome`` of the one before
(``started``): one message a job instead of two when jobs are prefetched. A job that
may be a document to split (``split_from``) is counted first, and one of enough pages
answered with its ``Pages`` instead of its text.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
import sys
import termios
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from ocrpool.engines.base import JobOptions, Source
from ocrpool.errors import OcrPoolError
from ocrpool.pool.limits import NO_LIMITS, InputLimits
from ocrpool.results import Recognition


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to start."""

    engine: str
    engine_options: dict[str, Any]
    stderr_path: str
    max_rss_mb: float | None = None
    """Take no job after one that left RSS at or past this (the soft limit)."""
    rss_relative: bool = False
    """Count ``max_rss_mb`` from the RSS right after warm-up."""
    warm_nice: int = 0
    """Added to the nice value of the thread that starts and warms the engine."""
    limits: InputLimits = NO_LIMITS
    """Checked of each input just before the engine reads it."""


@dataclass(frozen=True)
class Spilled:
    """Bytes too large to wait in a pipe, in a file the worker reads and removes: sending
    a job then never blocks the supervisor on a worker that is not reading (busy with its
    current job, or frozen by SIGSTOP)."""

    path: str


@dataclass(frozen=True)
class Job:
    job_id: int
    source: Source | Spilled
    options: JobOptions | None = None
    split_from: int | None = None
    """Count the pages of this path first: from this many on, answer with ``Pages``."""


@dataclass(frozen=True)
class Stop:
    """Close the engine and exit; sent only to a worker with no job in hand."""


@dataclass(frozen=True)
class Ready:
    rss_mb: float
    startup_s: float


@dataclass(frozen=True)
class StartFailed:
    error: str
    traceback: str
    option: str | None = None
    """Set when the engine refused its options (``EngineOptionError``, or a ``TypeError`` or
    ``ValueError`` from its constructor, which takes nothing else): the option's name, ""
    if unknown. No other start can succeed."""


@dataclass(frozen=True)
class Ack:
    job_id: int


@dataclass(frozen=True)
class Declined:
    """The worker passed its soft memory limit before this job: it never started it."""

    job_id: int


@dataclass(frozen=True)
class Pages:
    """A ``split_from`` job's file holds ``total`` pages, enough to split: counted at
    ``path`` (absolute, as the worker opened it), whose ``FileId`` was ``stamp``."""

    path: str
    total: int
    stamp: tuple[int, ...] | None


@dataclass(frozen=True)
class Outcome:
    """The end of one job: ``recognition`` or ``error``, and the worker's RSS after it."""

    job_id: int
    recognition: Recognition | None
    error: OcrPoolError | None
    rss_mb: float
    elapsed_s: float
    over_limit: bool
    """RSS is at or past the soft limit: the worker declines every further job."""
    started: int | None = None
    """The job it starts next, straight after this message: that job's ``Ack``."""
    pages: Pages | None = None
    """Set instead of ``recognition`` for a document to split."""


ToWorker = Job | Stop
FromWorker = Ready | StartFailed | Ack | Declined | Outcome


def pending_bytes(conn: Connection) -> int:
    """Bytes waiting to be read from ``conn``: ``FIONREAD``, one cheap system call, where
    ``Connection.poll`` builds a selector each time."""
    raw = fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(raw, sys.byteorder)


class Garbled(Exception):
    """The pipe held bytes that are not a message (a native library writing to the wrong
    descriptor, a worker dying mid-write): what was read before them is in ``messages``."""

    def __init__(self, messages: list[Any], cause: BaseException) -> None:
        super().__init__(f"unreadable message from a worker: {type(cause).__name__}: {cause}")
        self.messages = messages


_SIZE = struct.Struct("!i")
_LONG_SIZE = struct.Struct("!Q")


class Frames:
    """Messages from the read end of a ``Connection``, as many as one ``read`` returns.

    ``Connection.recv`` costs two system calls a message (its length, then its bytes) and
    blocks until the whole message is in: a worker frozen mid-write would freeze the
    reader. This reads what is there in one call, decodes the messages that are
    complete and keeps the rest for the next call. The framing is the one
    ``Connection.send`` writes: a signed 4-byte big-endian length (``-1`` then an
    unsigned 8-byte length for messages past 2 GiB), then the pickle.
    """

    CHUNK = 1 << 16
    MAX_READ = 1 << 26
    """``os.read`` allocates what it is asked for: a length that garbage made huge must
    not cost gigabytes."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._rest = b""
        self._wanted = 0  # bytes the incomplete message at the head of ``_rest`` lacks

    def read(self) -> list[Any]:
        """One read's complete messages (maybe none); ``EOFError`` at the end of the
        stream, ``Garbled`` past bytes that do not decode. Call it only when the
        descriptor is readable, or it waits for a byte."""
        chunk = os.read(self._fd, min(max(self.CHUNK, self._wanted), self.MAX_READ))
        if not chunk:
            raise EOFError("the other end closed the pipe")
        data = self._rest + chunk if self._rest else chunk
        messages: list[Any] = []
        start, end = 0, len(data)
        while end - start >= _SIZE.size:
            (size,) = _SIZE.unpack_from(data, start)
            head = start + _SIZE.size
            if size == -1:
                if end - head < _LONG_SIZE.size:
                    break
                (size,) = _LONG_SIZE.unpack_from(data, head)
                head += _LONG_SIZE.size
            if size < 0:
                raise Garbled(messages, ValueError(f"a message of {size} bytes"))
            if head + size > end:
                self._wanted = head + size - end
                break
            try:
                messages.append(pickle.loads(data[head : head + size]))
            except Exception as exc:
                raise Garbled(messages, exc) from exc
            start = head + size
        else:
            self._wanted = 0
        self._rest = data[start:] if start < end else b""
        return messages
