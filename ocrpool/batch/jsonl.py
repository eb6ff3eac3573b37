"""JSON Lines output: one record per line, appended whole with one ``write``.

A run killed mid-write can leave at most a torn last line. Opening the file repairs it:
an unterminated tail that parses as a record gets its newline, anything else is cut off
(that input is simply done again). A write that fails (disk full) takes its part back at
once, so the file stays whole for readers too. A later record for a path supersedes an
earlier one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import stat
from collections.abc import Iterator
from typing import Any

from ocrpool.batch.errors import OutputFailed, OutputRefused
from ocrpool.batch.ledger import Entry
from ocrpool.batch.outpath import check_not_deleted, open_output, remove_own
from ocrpool.batch.records import Record

log = logging.getLogger(__name__)

_CHUNK = 65536
RECORD_START = b'{"path":'
"""Every record starts so (``Record.to_dict`` puts the path first): how an existing file is
recognised as ours, even when its only line is torn."""


class JsonlSink:
    def __init__(self, path: str, *, detail: bool = False) -> None:
        self.path = path
        self.detail = detail
        self._created = not os.path.lexists(path)
        self._wrote = False
        self._fd = open_output(path, append=True)
        if not RECORD_START.startswith(os.pread(self._fd, len(RECORD_START), 0)):
            os.close(self._fd)
            raise OutputRefused(f"refusing to append to {path}: it is not an ocrpool JSONL file")
        try:
            self.repaired_bytes = repair_tail(self._fd)
        except OSError as exc:  # a full disk refuses the newline a whole last record lacks
            os.close(self._fd)
            raise OutputFailed.of(path, exc) from None
        if self.repaired_bytes:
            log.warning(
                "%s: cut a torn last line (%d bytes) left by an interrupted run",
                path,
                self.repaired_bytes,
            )
        self._end: int | None = os.fstat(self._fd).st_size
        """Where the last whole record ends: this sink is the file's only writer (flock).
        ``None``: a failed write cannot be taken back."""

    def replay(self) -> Iterator[Entry]:
        """Every record already in the file, in file order; unreadable lines are logged."""
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                entry = parse_entry(line)
                if entry is None:
                    log.warning("%s:%d: not a record, ignored", self.path, number)
                else:
                    yield entry

    def write(self, record: Record) -> None:
        self._wrote = True
        self.write_line(record.to_dict(detail=self.detail))

    def write_line(self, data: dict[str, Any]) -> None:
        """Append ``data`` as one line. ASCII-only JSON: names that are not valid UTF-8
        survive as ``\\udcXX`` escapes, and newlines in names are escaped."""
        line = json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str) + "\n"
        view = memoryview(line.encode("ascii"))
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            if self._end is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._end)
                    os.lseek(self._fd, self._end, os.SEEK_SET)
            raise OutputFailed.of(self.path, exc) from None
        if self._end is not None:
            self._end += len(line)
        self._check_not_deleted()

    def _check_not_deleted(self) -> None:
        check_not_deleted(self._fd, self.path)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        try:
            self._check_not_deleted()
            os.fsync(self._fd)
        except OSError as exc:
            raise OutputFailed.of(self.path, exc) from None
        finally:
            os.close(self._fd)

    def close_failed(self) -> None:
        if self._wrote or not self._created:
            self.close(None)
            return
        remove_own(self.path, self._fd)  # while locked: no other run can open it
        os.close(self._fd)


STDOUT_FD = 1


class JsonlStdout(JsonlSink):
    """Records to standard output (``--out -``), for a pipe. Nothing is read back, so
    there is no ledger: every input is done, and a rerun does them all again."""

    def __init__(self, *, detail: bool = False, fd: int = STDOUT_FD) -> None:
        self.path = "standard output"
        self.detail = detail
        self._fd = fd
        self._end = _append_point(fd)

    def replay(self) -> Iterator[Entry]:
        return iter(())

    def _check_not_deleted(self) -> None:
        """Standard output is the caller's: whatever it leads to is theirs to keep."""

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """Standard output stays open (and a pipe cannot be synced)."""

    def close_failed(self) -> None:
        """Nothing to remove: standard output is not this run's."""


def _append_point(fd: int) -> int | None:
    """Where this run starts writing to ``fd``, if a failed write may be cut back to it:
    only a regular file we write at the end of (``>>`` or ``>``), so that what it held
    before (earlier runs, a shell's other output) is never cut."""
    try:
        info = os.fstat(fd)
    except OSError as exc:
        raise OutputRefused(f"cannot write to standard output: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        return None
    if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
        return info.st_size
    offset = os.lseek(fd, 0, os.SEEK_CUR)
    return offset if offset == info.st_size else None


_SQLITE_INTEGERS = range(-(2**63), 2**63)


def parse_entry(line: bytes) -> Entry | None:
    """The entry of one line, or ``None`` when it is not a record: not JSON, or (a line
    edited, or of another program) a field of the wrong type, a number the ledger cannot
    hold, or a path that is no name (a lone surrogate of JSON's own, ``\\ud800``)."""
    try:
        data = json.loads(line)
        path, size, mtime, ok = data["path"], data["size"], data["mtime"], data["ok"]
        exports = data.get("exports") or {}  # format -> the file exported
        os.fsencode(path)
    except (ValueError, KeyError, TypeError):
        return None
    if not (
        isinstance(path, str)
        and isinstance(ok, bool)
        and (size is None or _integer(size))
        and (mtime is None or _integer(mtime) or _finite(mtime))
        and isinstance(exports, dict)
        and all(isinstance(name, str) for name in exports)
    ):
        return None
    return Entry(path, size, mtime, ok, frozenset(exports))


def _integer(value: object) -> bool:
    """An integer SQLite holds (``bool`` is an ``int`` to Python, not to JSON)."""
    return isinstance(value, int) and not isinstance(value, bool) and value in _SQLITE_INTEGERS


def _finite(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def repair_tail(fd: int) -> int:
    """Make the file end with a complete line; return how many bytes were cut."""
    end = os.fstat(fd).st_size
    if end == 0 or os.pread(fd, 1, end - 1) == b"\n":
        return 0
    start = end
    while start > 0:
        chunk_start = max(0, start - _CHUNK)
        newline = os.pread(fd, start - chunk_start, chunk_start).rfind(b"\n")
        if newline >= 0:
            start = chunk_start + newline + 1
            break
        start = chunk_start
    if parse_entry(os.pread(fd, end - start, start)) is not None:
        os.write(fd, b"\n")
        return 0
    os.ftruncate(fd, start)
    return end - start
