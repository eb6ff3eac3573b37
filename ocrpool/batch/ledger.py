"""Which inputs are done: the one resume mechanism behind every output format.

A sink only has to read back what it holds (``Sink.replay``: path, size, mtime, ok and
the formats exported, per record, the last record for a path winning). The ledger
indexes that in a private SQLite file that lives as long as the run (SQLite deletes it
on close), so memory stays flat for millions of records, and it claims each input this
run sends, so nothing is done twice.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sqlite3
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ocrpool.batch.errors import OutputFailed
from ocrpool.batch.records import InputFile


class Entry(NamedTuple):
    path: str
    size: int | None
    mtime: float | None
    ok: bool
    exports: frozenset[str] = frozenset()
    """The export formats the record lists (``ExportFormat`` values)."""


class Verdict(str, enum.Enum):
    NEW = "new"
    """Never recorded, changed since (other size or mtime), or recorded without an export
    this run asks for: OCR it."""
    RETRY = "retry"
    """Recorded as failed and ``retry_failed`` is set: OCR it again."""
    DONE = "done"
    """Recorded as OK with the same size and mtime: skip."""
    FAILED_BEFORE = "failed before"
    """Recorded as failed with the same size and mtime: skip (``--retry-failed`` retries)."""
    DUPLICATE = "duplicate"
    """This run already took the same path (two inputs overlap): skip."""

    @property
    def todo(self) -> bool:
        return self in (Verdict.NEW, Verdict.RETRY)


_SCHEMA = """
CREATE TABLE entries (
    path PRIMARY KEY, size INTEGER, mtime REAL, ok INTEGER, exports TEXT,
    claimed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID
"""
_EXPORTS_SEPARATOR = ","


class Ledger:
    """Owned by the runner: ``load`` what the sink holds, then ``claim`` each input.

    An input recorded as OK is done only if its record lists every format in ``exports``.
    """

    def __init__(
        self, *, retry_failed: bool = False, exports: frozenset[str] = frozenset()
    ) -> None:
        self.retry_failed = retry_failed
        self.exports = exports
        # "" is a private, temporary on-disk database: its cache is bounded, it spills to disk.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        with _failing_as_output():
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(_SCHEMA)

    def load(self, entries: Iterable[Entry]) -> None:
        """Index earlier records; a later entry for the same path replaces an earlier one."""
        with _failing_as_output():
            self._load(entries)

    def _load(self, entries: Iterable[Entry]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO entries (path, size, mtime, ok, exports) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, "
            "ok = excluded.ok, exports = excluded.exports",
            (
                (sql_path(e.path), e.size, e.mtime, e.ok, _EXPORTS_SEPARATOR.join(e.exports))
                for e in entries
            ),
        )
        self._db.execute("COMMIT")

    def claim(self, source: InputFile) -> Verdict:
        """What to do with ``source``; when the answer is to OCR it, it is taken for this run."""
        with _failing_as_output():
            return self._claim(source)

    def _claim(self, source: InputFile) -> Verdict:
        key = sql_path(source.path)
        row = self._db.execute(
            "SELECT claimed, size IS ? AND mtime IS ?, ok, exports FROM entries WHERE path = ?",
            (source.size, source.mtime, key),
        ).fetchone()
        verdict = _verdict(row, self.retry_failed, self.exports)
        if verdict.todo:
            self._db.execute(
                "INSERT INTO entries (path, claimed) VALUES (?, 1) "
                "ON CONFLICT (path) DO UPDATE SET claimed = 1",
                (key,),
            )
        return verdict

    def close(self) -> None:
        self._db.close()


LEDGER_NAME = "the temporary ledger"
"""What an ``OutputFailed`` of the ledger names: SQLite's own temporary file (in
``$SQLITE_TMPDIR`` or ``$TMPDIR``), which holds the index of what the output holds."""


@contextlib.contextmanager
def _failing_as_output() -> Iterator[None]:
    """The ledger's disk failing (full, an I/O error) stops the run as the output's does."""
    try:
        yield
    except sqlite3.Error as exc:
        raise OutputFailed.of(LEDGER_NAME, exc) from None


def _verdict(
    row: tuple[int, int, int, str | None] | None, retry_failed: bool, exports: frozenset[str]
) -> Verdict:
    if row is None:
        return Verdict.NEW
    claimed, unchanged, ok, exported = row
    if claimed:
        return Verdict.DUPLICATE
    if not unchanged:
        return Verdict.NEW
    if ok:
        missing = exports - set((exported or "").split(_EXPORTS_SEPARATOR))
        return Verdict.NEW if missing else Verdict.DONE
    return Verdict.RETRY if retry_failed else Verdict.FAILED_BEFORE


def sql_path(path: str) -> str | bytes:
    """A path as SQLite can store it: text, or its raw bytes when the name is not UTF-8
    (Python carries such bytes as lone surrogates, which SQLite text cannot hold)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def path_from_sql(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value
