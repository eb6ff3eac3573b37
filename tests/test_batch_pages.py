"""``ocrpool run`` on split documents: one record per document, written after its last
page; a partial document's record and summary; a killed run redoes only that document."""

from __future__ import annotations

import io
import json
import re
import signal
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from fakes import fake_pool, make_document
from test_batch_admission import write_png
from test_cli_run import (
    _line_count,
    _no_process_left,
    _start,
    _wait_for,
    last_by_path,
    records,
    run,
)

from ocrpool.batch.progress import LogLines
from ocrpool.batch.runner import BatchOptions, run_batch
from ocrpool.error_codes import ExitCode

FAKE = ("--engine", "fake", "--workers", "2", "--spares", "0")


def _folder(tmp_path: Path, pages: int) -> Path:
    folder = tmp_path / "in"
    make_document(folder / "doc.tif", pages)
    write_png(folder / "a.png")
    return folder


def test_one_record_per_document_with_every_page_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, out = _folder(tmp_path, 12), tmp_path / "out.jsonl"
    # 20 ms a page: a worker holds at most two pages, so the third goes to the other one
    # (with no-op pages, one worker could finish each before the next is submitted)
    assert run(str(folder), "--out", str(out), *FAKE, "--engine-option", "delay=0.02") == 0
    by_path = last_by_path(out)
    doc = by_path[str(folder / "doc.tif")]
    assert doc["ok"] and not doc["partial"] and doc["failed_pages"] == []
    assert [page["text"] for page in doc["pages"]] == [f"doc p{n}" for n in range(1, 13)]
    assert len({attempt["worker_pid"] for attempt in doc["attempts"]}) == 2
    assert len(records(out)) == 2
    summary = capsys.readouterr().err
    assert "pages:        13 (0 without text)" in summary
    assert "pages failed" not in summary


def test_a_partial_document_is_recorded_with_its_pages_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, out = _folder(tmp_path, 10), tmp_path / "out.db"
    args = ("--format", "sqlite", "--retries", "0", "--engine-option", "fault_page=4")
    assert run(str(folder), "--out", str(out), *FAKE, *args) == ExitCode.SOME_FAILED
    with sqlite3.connect(out) as db:
        row = db.execute(
            "SELECT ok, partial, failed_pages, error_type, pages FROM results WHERE path = ?",
            (str(folder / "doc.tif"),),
        ).fetchone()
        (summary,) = db.execute("SELECT summary FROM runs").fetchone()
    ok, partial, failed_pages, error_type, pages_json = row
    assert (ok, partial, json.loads(failed_pages), error_type) == (0, 1, [4], "PagesFailed")
    pages = json.loads(pages_json)
    assert pages[3]["error"]["type"] == "WorkerCrashed" and pages[3]["text"] == ""
    assert [p["text"] for i, p in enumerate(pages) if i != 3] == [
        f"doc p{n}" for n in range(1, 11) if n != 4
    ]
    assert "  pages failed: 1 (in 1 document, 1 partial)" in capsys.readouterr().err
    counts = json.loads(summary)
    assert counts["pages_failed"] == 1 and counts["partial"] == 1
    assert counts["failed"] == {"PagesFailed": 1} and counts["ok"] == 1


def test_no_split_pages_runs_the_document_as_one_job(tmp_path: Path) -> None:
    folder, out = _folder(tmp_path, 6), tmp_path / "out.jsonl"
    assert run(str(folder), "--out", str(out), *FAKE, "--no-split-pages") == ExitCode.OK
    doc = last_by_path(out)[str(folder / "doc.tif")]
    assert len(doc["attempts"]) == 1 and len(doc["pages"]) == 6


@pytest.mark.slow
def test_progress_lines_count_a_long_documents_pages_while_it_runs(tmp_path: Path) -> None:
    """The document is the only input: without its pages, no line could come between
    the start and its record. It takes at least 1 s (40 pages of 0.05 s on 2 workers),
    and the runner is called at least every 0.5 s while no result comes."""
    folder = tmp_path / "in"
    make_document(folder / "doc.tif", 40)
    stream = io.StringIO()
    options = BatchOptions(out=str(tmp_path / "out.jsonl"), inputs=(str(folder),))
    engine = {"delay": 0.05}
    summary = run_batch(
        options,
        lambda: fake_pool(workers=2, spares=0, engine_options=engine),
        progress=LogLines(stream, time.monotonic, interval_s=0.0),
    )
    assert summary.tally.ok == 1
    lines = stream.getvalue().splitlines()
    pages = [int(found[1]) for line in lines if (found := re.search(r"pages (\d+)/40 ", line))]
    assert pages == sorted(pages) and pages[-1] == 40
    assert any(done < 40 for done in pages)  # lines came while the document ran
    assert lines[-1].startswith("ocrpool: inputs 1/1 done, pages 40/40 of 1 split document")


@pytest.mark.slow
def test_sigkill_mid_document_then_resume_gives_one_record(tmp_path: Path) -> None:
    """The single page is recorded first; the kill lands while the document's 40 pages
    (0.05 s each on 2 workers) are half done: nothing of it is recorded, the rerun redoes
    that document only and records it once, and sweeps the folder the killed pool left.
    The document is in a subfolder: a folder's own files come first, whatever order the
    file system lists them in."""
    folder, out = tmp_path / "in", tmp_path / "out.jsonl"
    document = make_document(folder / "sub" / "doc.tif", 40)
    write_png(folder / "a.png")
    tag = uuid.uuid4().hex
    proc = _start(folder, out, tag, "--engine-option", "delay=0.05")
    _wait_for(lambda: _line_count(out) >= 1)
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    _no_process_left(tag)
    assert [r["path"] for r in records(out)] == [str(folder / "a.png")]
    (left,) = Path(tempfile.gettempdir()).glob(f"ocrpool-{proc.pid}-*")  # its pool's folder
    assert _start(folder, out, tag).wait(timeout=60) == ExitCode.OK
    assert not left.exists()  # swept by the rerun's pool
    paths = [r["path"] for r in records(out)]
    assert sorted(paths) == sorted([str(folder / "a.png"), document])
    doc = last_by_path(out)[document]
    assert [page["text"] for page in doc["pages"]] == [f"doc p{n}" for n in range(1, 41)]
