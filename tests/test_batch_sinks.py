"""Output formats: whole records, torn-line repair, read-back, locking
(``ocrpool.batch.jsonl``, ``sqlitedb``, ``txt``, ``sinks``)."""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from ocrpool.batch.errors import OutputFailed, OutputLocked, OutputNotAFile, OutputRefused
from ocrpool.batch.jsonl import JsonlSink, JsonlStdout
from ocrpool.batch.ledger import Entry, Ledger
from ocrpool.batch.records import InputFile, Record
from ocrpool.batch.sinks import OutputFormat, open_sink
from ocrpool.batch.sqlitedb import SCHEMA
from ocrpool.batch.txt import RECORDS_NAME, text_path
from ocrpool.errors import InvalidInput
from ocrpool.results import Attempt, Line, OcrResult, Page

ODD_NAME = "/in/new\nline \u00fc " + b"\xe9".decode("utf-8", "surrogateescape") + ".png"


PDF = {"pdf": "/exports/in/a.png.pdf"}


def _ok(path: str, text: str = "hello", exports: dict[str, str] = PDF) -> Record:
    line = Line(text, (1, 2, 3, 4), 0.9)
    result = OcrResult(
        path,
        pages=(Page(text, (line,), 90.0, text.upper()), Page("page 2"), Page("")),
        attempts=(Attempt(7, "ok", 0.5),),
        worker_pid=7,
        elapsed_s=0.5,
        rss_mb=100.0,
    )
    return Record(InputFile(path, 10, 1.25), "png", result, exports)


def _failed(path: str) -> Record:
    return Record.failure(
        InputFile(path, None, None), None, InvalidInput("no such file", input=path)
    )


def test_jsonl_records_round_trip_with_odd_names(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    sink = JsonlSink(str(out))
    sink.write(_ok(ODD_NAME))
    sink.write(_failed("/in/gone.png"))
    assert list(sink.replay()) == [
        Entry(ODD_NAME, 10, 1.25, True, frozenset({"pdf"})),
        Entry("/in/gone.png", None, None, False),
    ]
    sink.close()
    lines = out.read_bytes().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["path"] == ODD_NAME
    assert first["pages"] == [
        {"text": "hello", "empty": False, "rotation": 90.0, "corrected_text": "HELLO"},
        {"text": "page 2", "empty": False},
        {"text": "", "empty": True},
    ]
    assert first["exports"] == PDF
    assert json.loads(lines[1])["error"] == {
        "type": "InvalidInput",
        "message": "no such file",
        "input": "/in/gone.png",
    }


def test_detail_adds_lines_with_boxes_and_confidences(tmp_path: Path) -> None:
    sink = JsonlSink(str(tmp_path / "r.jsonl"), detail=True)
    sink.write(_ok("/in/a.png"))
    sink.close()
    record = json.loads((tmp_path / "r.jsonl").read_text())
    assert record["pages"][0]["lines"] == [
        {"text": "hello", "box": [1, 2, 3, 4], "confidence": 0.9}
    ]


def test_a_torn_last_line_is_cut_and_the_file_stays_readable(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    sink = JsonlSink(str(out))
    sink.write(_ok("/in/a.png"))
    sink.close()
    whole = out.read_bytes()
    out.write_bytes(whole + whole[: len(whole) // 2])  # killed in the middle of a write
    sink = JsonlSink(str(out))
    assert sink.repaired_bytes == len(whole) // 2
    assert list(sink.replay()) == [Entry("/in/a.png", 10, 1.25, True, frozenset(PDF))]
    sink.write(_ok("/in/b.png"))
    sink.close()
    assert [json.loads(line)["path"] for line in out.read_bytes().splitlines()] == [
        "/in/a.png",
        "/in/b.png",
    ]


def test_a_whole_last_record_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    sink = JsonlSink(str(out))
    sink.write(_ok("/in/a.png"))
    sink.close()
    out.write_bytes(out.read_bytes().rstrip(b"\n"))
    sink = JsonlSink(str(out))
    assert sink.repaired_bytes == 0
    sink.write(_ok("/in/b.png"))
    sink.close()
    assert len(out.read_bytes().splitlines()) == 2


def test_a_full_disk_refusing_the_missing_newline_stops_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repair's newline on a full disk raised a bare ``OSError``: a traceback and exit
    code 1 instead of exit code 3, and the same command never resumed."""
    out = tmp_path / "r.jsonl"
    sink = JsonlSink(str(out))
    sink.write(_ok("/in/a.png"))
    sink.close()
    out.write_bytes(kept := out.read_bytes().rstrip(b"\n"))
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", lambda fd, data: _raise(OSError(errno.ENOSPC, "No space")))
        with pytest.raises(OutputFailed, match=r"r\.jsonl: No space"):
            JsonlSink(str(out))
    assert out.read_bytes() == kept
    JsonlSink(str(out)).close()  # the lock went with the refused sink


def _raise(error: Exception) -> Any:
    raise error


@pytest.mark.parametrize(
    "line",
    [
        '{"path":123,"size":1,"mtime":1,"ok":true}',
        '{"path":null,"size":1,"mtime":1,"ok":true}',
        '{"path":"\\ud800","size":1,"mtime":1,"ok":true}',
        '{"path":"/in/x.png","size":99999999999999999999999,"mtime":1,"ok":true}',
        '{"path":"/in/x.png","size":1,"mtime":{"a":1},"ok":true}',
        '{"path":"/in/x.png","size":"1","mtime":1,"ok":true}',
        '{"path":"/in/x.png","size":1,"mtime":1,"ok":"no"}',
        '{"path":"/in/x.png","size":1,"mtime":1000000000000000000000000000000,"ok":true}',
        '{"path":"/in/x.png","size":1,"mtime":NaN,"ok":true}',
        '{"path":"/in/x.png","size":1,"mtime":1,"ok":true,"exports":"pdf"}',
    ],
    ids=[
        "int path",
        "null path",
        "lone surrogate",
        "huge size",
        "dict mtime",
        "str size",
        "str ok",
        "huge mtime",
        "nan mtime",
        "str exports",
    ],
)
def test_a_line_with_fields_of_the_wrong_type_is_not_a_record(tmp_path: Path, line: str) -> None:
    """An edited line, or another program's: the first three and the huge size stopped the
    next run with a traceback (``UnicodeEncodeError``, ``OverflowError``, ...), the dict
    with exit 3 blaming the temporary ledger, and ``"ok": "no"`` counted as OK."""
    out = tmp_path / "r.jsonl"
    out.write_text(line + "\n")
    sink = JsonlSink(str(out))
    sink.write(_ok("/in/a.png"))
    assert [entry.path for entry in sink.replay()] == ["/in/a.png"]
    sink.close()
    ledger = Ledger()
    ledger.load(JsonlSink(str(out)).replay())
    ledger.close()


def test_a_torn_first_record_is_cut(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_bytes(b'{"pa')
    JsonlSink(str(out)).close()
    assert out.read_bytes() == b""


def test_a_file_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("my notes\n")
    with pytest.raises(OutputRefused, match="not an ocrpool JSONL file"):
        JsonlSink(str(tmp_path / "notes.txt"))
    (tmp_path / "other.db").write_text("not sqlite")
    with pytest.raises(OutputRefused, match="not an SQLite database"):
        open_sink(OutputFormat.SQLITE, str(tmp_path / "other.db"))
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_only_one_run_writes_an_output(tmp_path: Path, fmt: OutputFormat) -> None:
    first = open_sink(fmt, str(tmp_path / "out"))
    with pytest.raises(OutputLocked, match="another ocrpool run is writing"):
        open_sink(fmt, str(tmp_path / "out"))
    first.close()
    open_sink(fmt, str(tmp_path / "out")).close()


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_an_output_deleted_mid_run_stops_the_run(tmp_path: Path, fmt: OutputFormat) -> None:
    """An output deleted while a run writes it took every record with its last
    descriptor, and the run still ended "done", exit 0 (and a second run could create,
    lock and write a new file of the same name at once). The next write, or the close,
    tells instead: ``OutputFailed``, exit 3, and the same command does them again."""
    out = tmp_path / "out"
    target = out / RECORDS_NAME if fmt is OutputFormat.TXT else out
    sink = open_sink(fmt, str(out))
    sink.write(_ok("/in/a.png"))
    target.unlink()
    with pytest.raises(OutputFailed, match=f"cannot write {target}: it was deleted"):
        sink.write(_ok("/in/b.png"))
    with pytest.raises(OutputFailed, match="it was deleted"):
        sink.close({"outcome": "ok"})
    assert not target.exists()
    again = open_sink(fmt, str(out))
    assert list(again.replay()) == []
    again.close()


def test_a_file_system_that_counts_no_links_is_not_taken_for_a_deletion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems give ``st_nlink`` 0 for every file: a file still under its name
    is not deleted."""
    fstat = os.fstat

    def no_links(fd: int) -> os.stat_result:
        info = list(fstat(fd))
        info[stat.ST_NLINK] = 0
        return os.stat_result(info)

    monkeypatch.setattr(os, "fstat", no_links)
    sink = open_sink(OutputFormat.JSONL, str(tmp_path / "out"))
    sink.write(_ok("/in/a.png"))
    sink.close({"outcome": "ok"})


def test_standard_output_to_a_deleted_file_is_the_callers(tmp_path: Path) -> None:
    """``-o - > log`` with ``log`` deleted: standard output is not ``ocrpool``'s output."""
    log = tmp_path / "log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT)
    log.unlink()
    sink = JsonlStdout(fd=fd)
    sink.write(_ok("/in/a.png"))
    sink.close({"outcome": "ok"})
    os.close(fd)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("special", "kind"), [("fifo", "FIFO"), ("null", "character device")])
@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_an_output_file_must_be_a_regular_file(
    tmp_path: Path, fmt: OutputFormat, special: str, kind: str
) -> None:
    """A FIFO failed the JSONL sink on its first seek (``Illegal seek``) and blocked the
    SQLite one for ever in ``open``; ``/dev/null`` took every record and then failed the
    final sync, exit 3. Either is refused before the run (``run_batch`` opens its sink
    before it creates the pool)."""
    out = tmp_path / "out"
    target = out / RECORDS_NAME if fmt is OutputFormat.TXT else out
    target.parent.mkdir(exist_ok=True)
    if special == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(os.devnull)
    with pytest.raises(
        OutputNotAFile, match=f"refusing to write {target}: it is a {kind}"
    ) as refused:
        open_sink(fmt, str(out))
    assert (refused.value.path, refused.value.kind) == (str(target), kind)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_an_sqlite_side_file_must_be_a_regular_file(tmp_path: Path, suffix: str) -> None:
    """SQLite deleted a FIFO left as ``out-wal`` (or wrote into a device): refused before
    the run, and the FIFO left alone."""
    out = tmp_path / "out"
    side = tmp_path / f"out{suffix}"
    os.mkfifo(side)
    with pytest.raises(OutputNotAFile, match=f"its side file {side} is a FIFO") as refused:
        open_sink(OutputFormat.SQLITE, str(out))
    assert (refused.value.path, refused.value.kind) == (str(side), "FIFO")
    assert side.is_fifo()
    side.unlink()
    open_sink(OutputFormat.SQLITE, str(out)).close()  # the lock was let go


def test_standard_output_is_never_synced(tmp_path: Path) -> None:
    """``--out -`` into ``/dev/null`` or a pipe, which cannot be synced (``EINVAL``),
    ends like any other complete run."""
    fd = os.open(os.devnull, os.O_WRONLY)
    sink = JsonlStdout(fd=fd)
    sink.write(_ok("/in/a.png"))
    sink.close({"outcome": "ok"})
    os.close(fd)


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ("CREATE TABLE results (id INTEGER PRIMARY KEY, name TEXT)", "its results table"),
        ("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", r"its tables \(users\)"),
    ],
    ids=["a results table of its own", "other tables"],
)
def test_another_programs_sqlite_database_is_refused_untouched(
    tmp_path: Path, schema: str, why: str
) -> None:
    """A database of another program passed the header check: the run switched it to
    WAL, added its columns to a ``results`` table of its own and a ``runs`` table,
    then failed with exit 3 blaming "the temporary ledger"."""
    out = tmp_path / "app.db"
    db = sqlite3.connect(out)
    db.execute(schema)
    db.execute("INSERT INTO " + schema.split()[2] + " (name) VALUES ('precious')")
    db.commit()
    db.close()
    before = out.read_bytes()
    with pytest.raises(OutputRefused, match=f"it is an SQLite database, but {why}"):
        open_sink(OutputFormat.SQLITE, str(out))
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
    open_sink(OutputFormat.SQLITE, str(tmp_path / "fresh.db")).close()  # no table yet: ours


def test_sqlite_keeps_one_row_per_path_and_the_runs(tmp_path: Path) -> None:
    out = str(tmp_path / "r.db")
    sink = open_sink(OutputFormat.SQLITE, out, options={"workers": 2})
    sink.write(_failed("/in/a.png"))
    sink.write(_ok(ODD_NAME))
    sink.close({"ok": 1})
    sink = open_sink(OutputFormat.SQLITE, out, options={"workers": 3})
    assert sorted(sink.replay()) == sorted(
        [Entry("/in/a.png", None, None, False), Entry(ODD_NAME, 10, 1.25, True, frozenset(PDF))]
    )
    sink.write(_ok("/in/a.png", "again"))  # supersedes the failure
    sink.close(None)  # as after a crash: no summary
    db = sqlite3.connect(out)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    rows = db.execute(
        "SELECT path, ok, text, error_type, run_id FROM results ORDER BY run_id DESC"
    ).fetchall()
    assert rows == [
        ("/in/a.png", 1, "again\fpage 2\f", None, 2),
        (ODD_NAME.encode("utf-8", "surrogateescape"), 1, "hello\fpage 2\f", None, 1),
    ]
    runs = db.execute("SELECT id, options, summary, finished_at IS NULL FROM runs").fetchall()
    assert runs == [(1, '{"workers": 2}', '{"ok": 1}', 0), (2, '{"workers": 3}', None, 1)]


def test_an_sqlite_output_from_before_exports_gets_the_column(tmp_path: Path) -> None:
    out = str(tmp_path / "r.db")
    with sqlite3.connect(out) as db:
        # the columns from exports on are newer than this database
        db.executescript(re.sub(r",\n *exports TEXT.*?(?=\n\);)", "", SCHEMA, flags=re.S))
        db.execute(
            "INSERT INTO results (path, ok, pages, attempts, evaluation_mode) "
            "VALUES ('/in/old.png', 1, '[]', '[]', 0)"
        )
    sink = open_sink(OutputFormat.SQLITE, out, options={})
    assert list(sink.replay()) == [Entry("/in/old.png", None, None, True)]
    sink.write(_ok("/in/a.png"))
    sink.close()
    with sqlite3.connect(out) as db:
        (exports,) = db.execute("SELECT exports FROM results WHERE path = '/in/a.png'").fetchone()
    assert json.loads(exports) == PDF


def test_txt_writes_a_text_file_per_ok_input_and_records_every_input(tmp_path: Path) -> None:
    out = tmp_path / "texts"
    sink = open_sink(OutputFormat.TXT, str(out))
    sink.write(_ok("/in/sub/a.png"))
    sink.write(_failed("/in/b.png"))
    assert list(sink.replay()) == [
        Entry("/in/sub/a.png", 10, 1.25, True, frozenset(PDF)),
        Entry("/in/b.png", None, None, False),
    ]
    sink.close()
    assert text_path(str(out), "/in/sub/a.png") == str(out / "in/sub/a.png.txt")
    assert (out / "in/sub/a.png.txt").read_text() == "hello\fpage 2\f"
    assert not (out / "in/b.png.txt").exists()
    assert len((out / RECORDS_NAME).read_text().splitlines()) == 2


def _failing_writes(monkeypatch: pytest.MonkeyPatch, fd: int) -> None:
    """From now on, a write to ``fd`` puts down 5 bytes and fails as at the file size limit."""
    write = os.write

    def short_then_efbig(target: int, data: Any) -> int:
        if target != fd:
            return write(target, data)
        write(target, bytes(data[:5]))
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    monkeypatch.setattr(os, "write", short_then_efbig)


@pytest.mark.parametrize("mode", [os.O_APPEND, 0], ids=[">>", "> after earlier output"])
def test_a_failed_write_to_stdout_takes_back_only_this_runs_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    """``ocrpool run -o - >> log`` at the file size limit: the user's earlier lines stay."""
    log = tmp_path / "log"
    log.write_bytes(b"earlier output\n")
    fd = os.open(log, os.O_WRONLY | mode)
    os.lseek(fd, 0, os.SEEK_END)
    sink = JsonlStdout(fd=fd)
    sink.write(_ok("/in/a.png"))
    kept = log.read_bytes()
    _failing_writes(monkeypatch, fd)
    with pytest.raises(OutputFailed, match="File too large"):
        sink.write(_ok("/in/b.png"))
    os.close(fd)
    assert log.read_bytes() == kept
    assert kept.startswith(b"earlier output\n{")


def test_a_closed_standard_output_is_refused() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(OutputRefused, match="cannot write to standard output: Bad file"):
        JsonlStdout(fd=write_end)


def test_a_failed_write_to_a_pipe_cuts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a regular file (a pipe, a terminal): nothing to take back, never truncated."""
    read_end, write_end = os.pipe()
    truncated: list[int] = []
    monkeypatch.setattr(os, "ftruncate", lambda fd, size: truncated.append(fd))
    sink = JsonlStdout(fd=write_end)
    _failing_writes(monkeypatch, write_end)
    with pytest.raises(OutputFailed):
        sink.write(_ok("/in/a.png"))
    os.close(read_end)
    os.close(write_end)
    assert truncated == []


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_a_failed_run_removes_an_output_it_created_and_never_wrote(
    tmp_path: Path, fmt: OutputFormat
) -> None:
    """A run refused before its first record (an engine option the engine refuses) leaves
    no empty output, no SQLite side file and no records folder behind."""
    out = tmp_path / f"r.{fmt.value}"
    open_sink(fmt, str(out)).close_failed()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_a_failed_run_keeps_its_records_and_an_output_it_did_not_create(
    tmp_path: Path, fmt: OutputFormat
) -> None:
    written, existing = tmp_path / f"w.{fmt.value}", tmp_path / f"e.{fmt.value}"
    sink = open_sink(fmt, str(written))
    sink.write(_failed("/in/gone.png"))
    sink.close_failed()
    open_sink(fmt, str(existing)).close(None)
    open_sink(fmt, str(existing)).close_failed()
    for out in (written, existing):
        sink = open_sink(fmt, str(out))
        assert [entry.path for entry in sink.replay()] == (
            ["/in/gone.png"] if out == written else []
        )
        sink.close()


@pytest.mark.parametrize("fmt", [OutputFormat.JSONL, OutputFormat.SQLITE])
def test_a_failed_run_never_removes_a_file_made_in_place_of_its_output(
    tmp_path: Path, fmt: OutputFormat
) -> None:
    """Its output deleted while it waited for its engines, and another run's made there:
    a failed run removes only the file it created, by its name and identity."""
    out = tmp_path / f"r.{fmt.value}"
    failed = open_sink(fmt, str(out))
    out.unlink()
    other = open_sink(fmt, str(out))
    other.write(_failed("/in/gone.png"))
    failed.close_failed()
    other.close()
    sink = open_sink(fmt, str(out))
    assert [entry.path for entry in sink.replay()] == ["/in/gone.png"]
    sink.close()
