"""SQLite output: a ``results`` table (one row per input path) and a ``runs`` table.

WAL mode, one committed statement per record: a killed run loses at most the records it
had not committed, and those inputs are simply done again; a statement that fails (disk
full) is rolled back whole. A later record for a path
replaces its row (``INSERT ... ON CONFLICT (path) DO UPDATE``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

from ocrpool.batch.errors import OutputFailed, OutputRefused
from ocrpool.batch.ledger import Entry, path_from_sql, sql_path
from ocrpool.batch.outpath import check_not_deleted, check_side_files, open_output, remove_own
from ocrpool.batch.records import Record

SIDECARS = ("-wal", "-shm", "-journal")
_HEADER = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,      -- ISO 8601, UTC
    finished_at TEXT,              -- NULL: the run was killed
    options TEXT NOT NULL,         -- JSON: the command's settings
    summary TEXT                   -- JSON: the closing summary, with exit_code
);
CREATE TABLE IF NOT EXISTS results (
    path TEXT PRIMARY KEY,         -- absolute; a BLOB when the name is not UTF-8
    size INTEGER,                  -- bytes; NULL when the file could not be stat-ed
    mtime REAL,                    -- seconds since the epoch
    format TEXT,                   -- png, jpeg, tiff, bmp, gif, pdf
    ok INTEGER NOT NULL,
    error_type TEXT,               -- e.g. InvalidInput, JobTimeout, WorkerCrashed
    error_message TEXT,
    error TEXT,                    -- JSON: every field of the error
    text TEXT,                     -- the pages' text, separated by form feeds
    pages TEXT NOT NULL,           -- JSON: [{"text": ..., "lines": [...]}]
    attempts TEXT NOT NULL,        -- JSON: [{"worker_pid", "outcome", "elapsed_s", "message"}]
    worker_pid INTEGER,
    elapsed_s REAL,
    rss_mb REAL,
    evaluation_mode INTEGER NOT NULL,
    run_id INTEGER REFERENCES runs (id),
    exports TEXT,                  -- JSON: {"pdf": path, ...}, the files exported
    partial INTEGER,               -- 1: some pages failed (PagesFailed), the others are here
    failed_pages TEXT              -- JSON: the failed pages' numbers, from 1
);
"""
ADDED_COLUMNS = {"exports": "TEXT", "partial": "INTEGER", "failed_pages": "TEXT"}
"""Columns newer than some databases: added to those when they are opened."""

_COLUMNS = (
    "path, size, mtime, format, ok, error_type, error_message, error, text, pages, attempts, "
    "worker_pid, elapsed_s, rss_mb, evaluation_mode, run_id, exports, partial, failed_pages"
)
_UPSERT = (
    f"INSERT INTO results ({_COLUMNS}) VALUES ({', '.join('?' * 19)}) ON CONFLICT (path) DO UPDATE "
    "SET " + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", ")[1:])
)


_TABLE_COLUMNS = {
    "runs": frozenset({"id", "started_at", "finished_at", "options", "summary"}),
    "results": frozenset(_COLUMNS.split(", ")) - frozenset(ADDED_COLUMNS),
}
"""The columns an ocrpool database's tables have had from the start."""


def foreign_schema(db: sqlite3.Connection) -> str | None:
    """Why the database ``db`` is not an ocrpool output (it is some other program's,
    which a run must not alter), or ``None``: it is one, or it has no table yet."""
    tables = {
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith("sqlite_")
    }
    if tables and not tables & _TABLE_COLUMNS.keys():
        return f"its tables ({', '.join(sorted(tables))}) are not ocrpool's"
    for table in sorted(tables & _TABLE_COLUMNS.keys()):
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        missing = _TABLE_COLUMNS[table] - have
        if missing:
            return f"its {table} table is not ocrpool's (no {', '.join(sorted(missing))})"
    return None


class SqliteSink:
    def __init__(self, path: str, *, detail: bool = False, options: dict[str, Any]) -> None:
        self.path = path
        self.detail = detail
        self._created = not os.path.lexists(path)
        self._wrote = False
        lock_fd = open_output(path)
        try:
            check_side_files(path, SIDECARS)
        except OutputRefused:
            os.close(lock_fd)
            raise
        if os.pread(lock_fd, len(_HEADER), 0) not in (b"", _HEADER):
            os.close(lock_fd)
            raise OutputRefused(f"refusing to write {path}: it is not an SQLite database")
        self._lock_fd = lock_fd
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            foreign = foreign_schema(self._db)
            if foreign is None:
                self.run_id = self._prepare(options)
        except sqlite3.Error as exc:
            self._db.close()
            os.close(lock_fd)
            raise OutputFailed.of(path, exc) from None
        if foreign is not None:
            self._db.close()
            os.close(lock_fd)
            raise OutputRefused(
                f"refusing to write {path}: it is an SQLite database, but {foreign}"
            )

    def _prepare(self, options: dict[str, Any]) -> int | None:
        """Set the database up and open this run's row; its id."""
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        existing = {row[1] for row in self._db.execute("PRAGMA table_info(results)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in existing:
                self._db.execute(f"ALTER TABLE results ADD COLUMN {column} {kind}")
        cursor = self._db.execute(
            "INSERT INTO runs (started_at, options) VALUES (?, ?)",
            (_now(), json.dumps(options, default=str)),
        )
        return cursor.lastrowid

    def replay(self) -> Iterator[Entry]:
        rows = self._db.execute("SELECT path, size, mtime, ok, exports FROM results")
        for path, size, mtime, ok, exports in rows:
            formats = frozenset(json.loads(exports)) if exports else frozenset()
            yield Entry(path_from_sql(path), size, mtime, bool(ok), formats)

    def write(self, record: Record) -> None:
        self._wrote = True
        data = record.to_dict(detail=self.detail)
        error = data["error"]
        try:
            self._upsert(record, data, error)
        except sqlite3.Error as exc:
            raise OutputFailed.of(self.path, exc) from None
        check_not_deleted(self._lock_fd, self.path)

    def _upsert(self, record: Record, data: dict[str, Any], error: dict[str, Any] | None) -> None:
        self._db.execute(
            _UPSERT,
            (
                sql_path(record.input.path),
                data["size"],
                data["mtime"],
                data["format"],
                data["ok"],
                None if error is None else error["type"],
                None if error is None else sql_text(error["message"]),
                None if error is None else json.dumps(error, default=str),
                sql_text(record.text),
                json.dumps(data["pages"]),
                json.dumps(data["attempts"]),
                data["worker_pid"],
                data["elapsed_s"],
                data["rss_mb"],
                data["evaluation_mode"],
                self.run_id,
                json.dumps(data["exports"]),
                data["partial"],
                json.dumps(data["failed_pages"]),
            ),
        )

    def close(self, summary: dict[str, Any] | None = None) -> None:
        try:
            check_not_deleted(self._lock_fd, self.path)
            if summary is not None:
                self._db.execute(
                    "UPDATE runs SET finished_at = ?, summary = ? WHERE id = ?",
                    (_now(), json.dumps(summary, default=str), self.run_id),
                )
        except sqlite3.Error as exc:
            raise OutputFailed.of(self.path, exc) from None
        finally:
            self._db.close()
            os.close(self._lock_fd)

    def close_failed(self) -> None:
        if self._wrote or not self._created:
            self.close(None)
            return
        try:
            self._db.close()
            if remove_own(self.path, self._lock_fd):  # while locked: no other run opens it
                for suffix in SIDECARS:
                    with contextlib.suppress(OSError):
                        os.unlink(self.path + suffix)
        finally:
            os.close(self._lock_fd)


def sql_text(value: str) -> str:
    """Text SQLite can hold: the bytes of a name that is not UTF-8 (carried in Python as
    lone surrogates, in a message or a fake engine's text) become ``\\xe9`` escapes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
