"""``ocrpool run`` end to end: the real pool with the fake engine (the file's stem as its
text), in-process through ``ocrpool.cli.main`` and, for kills and signals, as a subprocess.
Two ``aspose`` tests run the real engine on the example images."""

from __future__ import annotations

import ctypes
import errno
import io
import json
import logging
import os
import random
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pypdf
import pytest
from test_batch_admission import png_header, write_png

from ocrpool.batch.txt import RECORDS_NAME
from ocrpool.cli import main
from ocrpool.error_codes import ExitCode

REPO = Path(__file__).resolve().parent.parent
OCRPOOL = [str(Path(sys.executable).parent / "ocrpool")]
FAST = ["--engine", "fake", "--workers", "1", "--spares", "0"]
PROGRESS = re.compile(
    r"ocrpool: (\d+)/(\d+)\+? done, [\d.]+ images/s, ETA \S+, (\d+) failed, \d+ recycles"
)


def run(*args: str) -> int:
    return main(["run", *args])


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_bytes().splitlines()]


def last_by_path(out: Path) -> dict[str, dict[str, Any]]:
    """The JSONL rule: the last record for a path wins."""
    return {str(r["path"]): r for r in records(out)}


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png", "sub/c.png"):
        write_png(folder / name)
    (folder / "README.md").write_text("not an image")
    return folder


def _paths(folder: Path, *names: str) -> set[str]:
    return {str(folder / name) for name in names}


# ---- formats and resume -------------------------------------------------------------


def test_jsonl_one_record_per_input_and_a_rerun_does_nothing(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.jsonl"
    assert run(str(images), "--out", str(out), *FAST) == ExitCode.OK
    by_path = last_by_path(out)
    assert set(by_path) == _paths(images, "a.png", "b.png", "sub/c.png")
    record = by_path[str(images / "a.png")]
    assert {k: record[k] for k in ("size", "format", "ok", "error", "pages")} == {
        "size": 33,
        "format": "png",
        "ok": True,
        "error": None,
        "pages": [{"text": "a", "empty": False}],
    }
    assert record["mtime"] == (images / "a.png").stat().st_mtime
    assert record["worker_pid"] and record["attempts"] and "evaluation_mode" in record
    assert "skipped:      1 (not an image 1)" in capsys.readouterr().err

    assert run(str(images), "--out", str(out), *FAST) == ExitCode.OK
    assert len(records(out)) == 3
    assert "done before:  3 ok, 0 failed" in capsys.readouterr().err


def test_sqlite_results_and_runs(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.db"
    for _ in range(2):
        assert run(str(images), "--out", str(out), "--format", "sqlite", *FAST) == ExitCode.OK
    db = sqlite3.connect(out)
    rows = db.execute("SELECT path, ok, text, format, run_id FROM results").fetchall()
    assert sorted(rows) == [
        (str(images / "a.png"), 1, "a", "png", 1),
        (str(images / "b.png"), 1, "b", "png", 1),
        (str(images / "sub/c.png"), 1, "c", "png", 1),
    ]
    runs = db.execute("SELECT options, summary FROM runs ORDER BY id").fetchall()
    assert [json.loads(summary)["ok"] for _, summary in runs] == [3, 0]
    assert json.loads(runs[0][0])["pool"]["engine"] == "fake"
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_txt_mirrors_each_input_under_the_output_folder(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "texts"
    assert run(str(images), "--out", str(out), "--format", "txt", *FAST) == ExitCode.OK
    assert (out / str(images / "sub/c.png").lstrip("/")).with_suffix(".png.txt").read_text() == "c"
    assert len(records(out / RECORDS_NAME)) == 3
    assert run(str(images), "--out", str(out), "--format", "txt", *FAST) == ExitCode.OK
    assert len(records(out / RECORDS_NAME)) == 3


def test_retry_failed_supersedes_the_failed_record(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    export = ["--export", "hocr"]
    assert run(str(images), "--out", str(out), "--max-pixels", "10", *FAST, *export) == (
        ExitCode.SOME_FAILED
    )
    assert all(not r["ok"] and r["exports"] == {} for r in records(out))
    assert not list((tmp_path / "results-exports").rglob("*.hocr"))
    assert run(str(images), "--out", str(out), *FAST, *export) == ExitCode.SOME_FAILED
    assert len(records(out)) == 3  # not retried
    assert run(str(images), "--out", str(out), "--retry-failed", *FAST, *export) == ExitCode.OK
    assert len(records(out)) == 6
    assert all(r["ok"] for r in last_by_path(out).values())
    assert len(list((tmp_path / "results-exports").rglob("*.hocr"))) == 3


def test_paths_from_stdin(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read as bytes, as a list file is: a name that is not UTF-8 passes even when the
    locale would decode standard input strictly (it was a UnicodeDecodeError traceback)."""
    odd = os.fsdecode(b"caf\xe9.png")
    for name in ("name with spaces.png", odd):
        write_png(images / name)
    listing = f"{images / 'a.png'}\n\n{images / 'name with spaces.png'}\n{images / 'sub'}\n"
    (tmp_path / "list").write_bytes(os.fsencode(listing + f"{images / odd}\r\n"))
    stdin = (tmp_path / "list").open(encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdin", stdin)
    out = tmp_path / "results.jsonl"
    assert run("--from-list", "-", "--out", str(out), *FAST) == ExitCode.OK
    stdin.close()
    expected = _paths(images, "a.png", "name with spaces.png", "sub/c.png", odd)
    assert set(last_by_path(out)) == expected


@pytest.mark.parametrize("fmt", ["jsonl", "txt"])
@pytest.mark.parametrize("via", ["name", "stdin"])
def test_a_list_that_is_the_output_is_refused(
    images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    via: str,
) -> None:
    """``--from-list results.jsonl -o results.jsonl`` read each record it appended back
    as a path, failed it and recorded it: the output grew without end (24 MB in 8 s)."""
    out = tmp_path / "out"
    assert run(str(images / "a.png"), "--out", str(out), "--format", fmt, *FAST) == ExitCode.OK
    written = out / RECORDS_NAME if fmt == "txt" else out
    kept = written.read_bytes()
    listing = "-"
    if via == "stdin":
        monkeypatch.setattr(sys, "stdin", written.open())
    else:
        listing = str(written)
    stop = ("--max-failures", "3")  # without the refusal, an end to the loop
    code = run("--from-list", listing, "--out", str(out), "--format", fmt, *FAST, *stop)
    assert code == ExitCode.USAGE
    assert "whose records the run would read back as paths" in capsys.readouterr().err
    assert written.read_bytes() == kept


def test_a_list_from_a_closed_stdin_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Started with standard input closed (``<&-``, a daemon), ``sys.stdin`` is ``None``:
    ``--from-list -`` was an ``AttributeError`` traceback, exit code 1."""
    monkeypatch.setattr(sys, "stdin", None)
    out = tmp_path / "results.jsonl"
    assert run("--from-list", "-", "--out", str(out), *FAST) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err == "ocrpool run: error: cannot read the list -: standard input is closed\n"
    assert not out.exists()


def test_records_to_a_closed_stdout_are_a_usage_error(
    images: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Started with standard output closed (``>&-``), ``-o -`` was an ``OSError`` traceback
    (``Bad file descriptor``), exit code 1; descriptor 1 may even be another file's."""
    monkeypatch.setattr(sys, "stdout", None)
    assert run(str(images), "--out", "-", *FAST) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err == "ocrpool run: error: cannot write to standard output: it is closed\n"


@pytest.mark.parametrize("closed", [2, 0], ids=["2>&-", "<&-"])
def test_a_run_started_with_a_standard_descriptor_closed_does_its_work(
    images: Path, tmp_path: Path, closed: int
) -> None:
    """With ``2>&-`` (a daemon, a cron line) the run did nothing: an ``AttributeError``
    from ``sys.stderr`` being ``None``, exit code 1 (and the next file opened, the output,
    would have taken descriptor 2). Closed descriptors now get the null device."""
    out = tmp_path / "results.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "ocrpool", "run", str(images), "--out", str(out), *FAST],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        preexec_fn=lambda: os.close(closed),
        check=False,
        timeout=120,
    )
    assert done.returncode == ExitCode.OK
    assert len(records(out)) == 3


def test_a_run_from_a_removed_folder_is_a_usage_error(
    images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A shell still in a folder that was removed: a relative path cannot be resolved (a
    ``FileNotFoundError`` traceback) and no worker can start there (multiprocessing starts
    each in the current folder)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    for inputs in ("../images", str(images)):
        assert run(inputs, "--out", str(tmp_path / "r.jsonl"), *FAST) == ExitCode.USAGE
        err = capsys.readouterr().err
        assert err == (
            "ocrpool run: error: the current folder was removed; run from a folder that "
            "exists and this user may enter\n"
        )
    assert not (tmp_path / "r.jsonl").exists()


def test_the_fake_engine_exports_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    """Its text is the name's stem: every export of ``caf\\xe9.png`` failed the input
    with ``EngineError: UnicodeEncodeError`` (surrogates not allowed); the bytes that are
    not UTF-8 now come out as U+FFFD."""
    folder = tmp_path / "in"
    folder.mkdir()
    odd = os.fsdecode(os.fsencode(str(folder)) + b"/caf\xe9.png")
    write_png(odd)
    out = tmp_path / "results.jsonl"
    assert run(str(folder), "--out", str(out), "--export", "pdf,hocr,txt", *FAST) == ExitCode.OK
    (record,) = records(out)
    assert record["path"] == odd and set(record["exports"]) == {"pdf", "hocr", "txt"}
    pdf = pypdf.PdfReader(record["exports"]["pdf"])
    assert pdf.pages[0]["/FakeText"] == "caf\ufffd"
    assert "caf\ufffd" in Path(record["exports"]["hocr"]).read_text(encoding="utf-8")


def test_max_failures_stops_the_run_and_the_same_command_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``--strict`` a page without text fails its input (the fake engine reads no
    text in a name with ``blank``): two in a row stop the run; the rerun records the rest."""
    names = ["ok1.png", "blank1.png", "blank2.png", "ok2.png", "blank3.png", "ok3.png"]
    folder = tmp_path / "in"
    folder.mkdir()
    for name in names:
        write_png(folder / name)
    (tmp_path / "list.txt").write_text("".join(f"{folder / name}\n" for name in names))
    out = tmp_path / "results.jsonl"
    args = ["--from-list", str(tmp_path / "list.txt"), "--out", str(out), "--strict", *FAST]
    assert run(*args, "--max-failures", "2") == ExitCode.TOO_MANY_FAILURES == 5
    assert "stopped: 2 inputs in a row failed (--max-failures)" in capsys.readouterr().err
    assert [(Path(r["path"]).name, r["ok"]) for r in records(out)] == [
        ("ok1.png", True),
        ("blank1.png", False),
        ("blank2.png", False),
    ]
    assert run(*args, "--max-failures", "2") == ExitCode.SOME_FAILED
    assert [(Path(r["path"]).name, r["ok"]) for r in records(out)][3:] == [
        ("ok2.png", True),
        ("blank3.png", False),
        ("ok3.png", True),
    ]
    assert run(*args, "--max-failures", "0") == ExitCode.USAGE


# ---- bad inputs ---------------------------------------------------------------------


def test_every_kind_of_bad_input_is_recorded_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = ["name with spaces.png", "ünïcødé.png", "new\nline.png", "scan.dat"]
    for name in good:
        write_png(folder / name)
    undecodable = os.fsdecode(os.fsencode(str(folder)) + b"/caf\xe9.png")
    write_png(undecodable)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8)
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("a text file with an image name")
    (folder / "broken.png").symlink_to(folder / "gone.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "bomb.png").write_bytes(png_header(100_000, 100_000))
    write_png(folder / "crash.png")
    (folder / "notes.md").write_text("skipped, counted")
    os.mkfifo(folder / "pipe")
    (folder / "again").symlink_to(".")

    out = tmp_path / "results.jsonl"
    assert run(str(folder), "--out", str(out), *FAST, "--retries", "0") == ExitCode.SOME_FAILED
    by_path = last_by_path(out)
    assert len(records(out)) == len(by_path) == 12
    for name in good:
        assert by_path[str(folder / name)]["pages"] == [{"text": Path(name).stem, "empty": False}]
    assert by_path[undecodable]["pages"] == [{"text": Path(undecodable).stem, "empty": False}]
    errors = {
        Path(path).name: (r["error"]["type"], r["error"]["message"])
        for path, r in by_path.items()
        if not r["ok"]
    }
    assert errors == {
        "corrupt.png": ("InvalidInput", "corrupt PNG: cannot read the image size"),
        "empty.png": ("InvalidInput", "empty file (0 bytes)"),
        "text.jpg": (
            "InvalidInput",
            "not an image: the content is not PNG, JPEG, TIFF, BMP, GIF or PDF",
        ),
        "broken.png": (
            "InvalidInput",
            f"broken symlink: its target {folder}/gone.png does not exist",
        ),
        "loop.png": ("InvalidInput", "symlink loop: the link resolves to itself"),
        "bomb.png": (
            "ImageTooLarge",
            "image too large: 100000x100000 = 10000000000 pixels is over the limit of "
            "178956970 (--max-pixels), a possible decompression bomb",
        ),
        "crash.png": errors["crash.png"],
    }
    assert errors["crash.png"][0] == "WorkerCrashed"
    err = capsys.readouterr().err
    assert "failed:       7 (InvalidInput 5, ImageTooLarge 1, WorkerCrashed 1)" in err
    assert "skipped:      3 (not an image 1, not a regular file 1, symlink loop 1)" in err


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _without_read_override() -> None:
    """In the child, before exec: give up root's power to read any file (chmod 000 then
    stops root too). Dropped from the bounding set, the capabilities are gone after exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.slow
def test_unreadable_files_and_folders(tmp_path: Path) -> None:
    write_png(tmp_path / "ok.png")
    write_png(tmp_path / "secret.png").chmod(0o000)
    (tmp_path / "locked").mkdir(mode=0o000)
    out = tmp_path / "results.jsonl"
    inputs = [str(tmp_path / name) for name in ("ok.png", "secret.png", "locked")]
    preexec = _without_read_override if os.geteuid() == 0 else None
    try:
        done = subprocess.run(
            [*OCRPOOL, "run", *inputs, "--out", str(out), *FAST],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=preexec,
        )
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE here: {error}")
    assert done.returncode == ExitCode.SOME_FAILED, done.stderr
    messages = {Path(str(r["path"])).name: r["error"] for r in records(out)}
    assert messages == {
        "ok.png": None,
        "secret.png": {
            "type": "InvalidInput",
            "message": "cannot read: Permission denied",
            "input": str(tmp_path / "secret.png"),
        },
    }
    assert "skipped:      1 (unreadable folder 1)" in done.stderr


# ---- usage errors and the progress display -------------------------------------------


NOT_A_FILE = "refusing to write /dev/null: it is a character device, not a regular file"
"""``-o /dev/null`` OCRed every input, then exit 3 from the final sync."""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--out", "{tmp}/r.jsonl"], "no such file or folder: nope"),
        (["{images}", "--out", "{images}/r.jsonl"], "--allow-out-inside-input"),
        (["{images}/a.png", "--out", "{images}/a.png"], "it is an input (would overwrite it)"),
        (["{images}", "--out", "{tmp}"], "cannot open"),
        (["--out", "{tmp}/r.jsonl"], "give at least one INPUT or --from-list"),
        (["{images}", "--out", "{tmp}/r.jsonl", "--workers", "0"], "workers must be at least 1"),
        (
            ["{images}", "--out", "{tmp}/r.jsonl", "--export", "pdf,bmp"],
            "unknown export format 'bmp'; choose from: pdf, pdf-no-img, hocr",
        ),
        (
            ["{images}", "--out", "{tmp}/r.jsonl", "--export-dir", "x"],
            "--export-dir needs --export",
        ),
        (["{images}", "--out", "/dev/null"], NOT_A_FILE),
        (["{images}", "--out", "/dev/null", "--format", "sqlite"], NOT_A_FILE),
        (
            ["{images}", "--out", "{tmp}/r.jsonl", "--export", "pdf", "--export-dir", "{images}/x"],
            "refusing to write {images}/x inside the input folder",
        ),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(
    images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    before = sorted(tmp_path.rglob("*"))
    filled = [a.format(tmp=tmp_path, images=images) for a in args]
    assert run(*filled, "--engine", "fake") == ExitCode.USAGE
    assert message.format(images=images) in capsys.readouterr().err
    assert sorted(tmp_path.rglob("*")) == before


def test_an_engine_module_that_does_not_import_is_a_usage_error(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was a ``ModuleNotFoundError`` traceback, exit code 1."""
    out = tmp_path / "r.jsonl"
    assert run(str(images), "--out", str(out), "--engine", "no_such_module:Engine") == (
        ExitCode.USAGE
    )
    err = capsys.readouterr().err
    assert err == (
        "ocrpool run: error: engine 'no_such_module:Engine': cannot import no_such_module: "
        "No module named 'no_such_module'\n"
    )
    assert not out.exists()


def test_pool_options_map_onto_ocrpool(tmp_path: Path) -> None:
    """Stored in the SQLite ``runs`` table; no pool starts, as there is nothing to OCR."""
    (tmp_path / "empty").mkdir()
    out = tmp_path / "r.db"
    args = ["--max-jobs", "0", "--max-rss", "300", "--timeout", "5", "--retries", "0"]
    args += ["--license", "my.lic", "--language", "deu", "--max-pixels", "5000"]
    for option in ("language_detection_level=0.5", "warmup=FALSE", "threads=3", "spellcheck=a=b"):
        args += ["--engine-option", option]
    assert run(str(tmp_path / "empty"), "--out", str(out), "--format", "sqlite", *args) == 0
    with sqlite3.connect(out) as db:
        (options,) = db.execute("SELECT options FROM runs").fetchone()
    assert json.loads(options)["pool"] == {
        "max_jobs_per_worker": None,
        "max_rss_mb": 300.0,
        "hard_rss_mb": None,
        "job_timeout": 5.0,
        "retries": 0,
        "spares": None,
        "engine": "aspose",
        "pages_per_job": 1,
        "split_min_pages": 4,
        "max_pixels": 5000,  # checked again by the worker reading the file
        "engine_options": {
            "language_detection_level": 0.5,
            "warmup": False,
            "threads": 3,
            "spellcheck": "a=b",
            "license": "my.lic",
            "language": "deu",
        },
    }


def test_recognition_flags_become_engine_options(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "r.db"
    args = ["--format", "sqlite", "--export", "PDF,hocr,pdf", "--no-rotate-pages"]
    args += ["--spellcheck", "eng", "--spellcheck-dictionary", "words.txt"]
    assert run(str(tmp_path / "empty"), "--out", str(out), *args) == ExitCode.OK
    with sqlite3.connect(out) as db:
        options = json.loads(db.execute("SELECT options FROM runs").fetchone()[0])
    assert options["pool"]["engine_options"] == {
        "exports": ["pdf", "hocr"],
        "rotate_pages": False,
        "spellcheck": "eng",
        "spellcheck_dictionary": "words.txt",
    }
    assert (options["exports"], options["export_dir"]) == (
        ["pdf", "hocr"],
        str(tmp_path / "r-exports"),
    )


def test_a_bad_engine_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run(".", "--out", "r.jsonl", "--engine-option", "novalue")
    assert caught.value.code == ExitCode.USAGE
    assert "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("colour=blue", "the 'fake' engine has no option 'colour'; its options: balloon_mb,"),
        ("page_fault=nope", "the 'fake' engine refused its options: page_fault must be one of"),
    ],
)
@pytest.mark.parametrize("fmt", ["jsonl", "sqlite", "txt"])
def test_an_engine_option_the_engine_refuses_is_a_usage_error(
    images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    option: str,
    says: str,
    fmt: str,
) -> None:
    """Told in one line, at once (an unknown name before any worker starts; a value the
    engine refuses at its first start, not after three with a traceback each), not
    logged as well (nor the failed start's worker exit), and no empty output left."""
    out = tmp_path / f"r.{fmt}"
    args = ["--out", str(out), "--format", fmt, *FAST, "--engine-option", option]
    assert run(str(images), *args) == 2
    err = capsys.readouterr().err
    assert f"ocrpool run: error: {says}" in err
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "Traceback" not in err and "doctor" not in err
    assert list(tmp_path.iterdir()) == [images]


def test_a_refused_run_keeps_an_output_that_was_there(images: Path, tmp_path: Path) -> None:
    """Only an output the run created is removed: an empty file the user made stays."""
    out = tmp_path / "r.jsonl"
    out.touch()
    assert run(str(images), "--out", str(out), *FAST, "--engine-option", "delay=nan") == 2
    assert out.read_bytes() == b""


@pytest.mark.slow
def test_an_engine_that_cannot_start_points_to_doctor(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.jsonl"
    code = run(str(images), "--out", str(out), *FAST, "--engine-option", "fail_start=true")
    assert code == ExitCode.ENGINE_UNAVAILABLE == 4
    err = capsys.readouterr().err
    assert "could not start the 'fake' engine" in err
    assert err.count("ocrpool doctor") == 1  # the start failure's own hint, not said twice
    assert not out.exists()


def test_a_pool_that_cannot_start_a_thread_is_one_line_and_exit_4(
    images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``ulimit -v`` small enough that the supervisor's thread cannot start: a traceback
    and exit 1 before, now the engine-unavailable error."""
    start = threading.Thread.start

    def refuse(thread: threading.Thread) -> None:
        if thread.name == "ocrpool-supervisor":
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    out = tmp_path / "r.jsonl"
    assert run(str(images), "--out", str(out), *FAST) == ExitCode.ENGINE_UNAVAILABLE
    err = capsys.readouterr().err
    assert "error: could not start the pool's supervisor thread" in err
    assert "Traceback" not in err and "doctor" not in err  # it cannot help with a limit
    assert not out.exists()


def test_progress_lines_off_a_terminal(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.jsonl"
    write_png(images / "crash.png")
    args = [str(images), "--out", str(out), *FAST, "--retries", "0", "--progress-interval", "0"]
    assert run(*args) == ExitCode.SOME_FAILED
    lines = capsys.readouterr().err.splitlines()
    progress = [m.groups() for line in lines if (m := PROGRESS.fullmatch(line))]
    assert progress[-1] == ("4", "4", "1")
    assert any(line.startswith("ocrpool: 0/1+ done") for line in lines)
    assert lines[-9:] == [
        "ocrpool run: done",
        "  ok:           3",
        "  failed:       1 (WorkerCrashed 1)",
        "  skipped:      1 (not an image 1)",
        "  done before:  0 ok, 0 failed (--retry-failed retries them)",
        "  pages:        3 (0 without text)",
        lines[-3],
        lines[-2],
        lines[-1],
    ]
    assert lines[-2].startswith("  worker exits: ") and "crash 1" in lines[-2]
    assert re.fullmatch(r"  elapsed:      [\d.]+ s \([\d.]+ images/s\)", lines[-3])
    assert re.fullmatch(r"  peak worker RSS: \d+ MB", lines[-1])


class ClosedPipe(io.StringIO):
    """Standard error piped into ``head -1``, which has exited: every write fails."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_progress_into_a_closed_pipe_goes_quiet_and_the_run_finishes(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ocrpool run ... 2>&1 | head -1``: a BrokenPipeError killed the batch with exit 1."""
    out = tmp_path / "r.jsonl"
    monkeypatch.setattr(sys, "stderr", ClosedPipe())
    assert run(str(images), "--out", str(out), *FAST, "--progress-interval", "0") == ExitCode.OK
    assert len(records(out)) == 3


class UnwritableStream(io.StringIO):
    """Standard error on a full disk (``2>/dev/full``) or a terminal hung up (``EIO``)."""

    def __init__(self, error: int) -> None:
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        raise OSError(self.error, os.strerror(self.error))


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
def test_an_unwritable_stderr_keeps_the_exit_code(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    """The summary (or a usage error) printed to a full stderr raised OSError: a run
    that had recorded every input exited 1, a usage error 1 instead of 2."""
    out = tmp_path / "r.jsonl"
    monkeypatch.setattr(sys, "stderr", UnwritableStream(error))
    assert run(str(images), "--out", str(out), *FAST) == ExitCode.OK
    assert len(records(out)) == 3
    assert run(str(images), "--out", str(out), "--export-dir", "x") == ExitCode.USAGE


def test_quiet_prints_nothing(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(str(images), "--out", str(tmp_path / "r.jsonl"), *FAST, "--quiet") == ExitCode.OK
    assert capsys.readouterr().err == ""


# ---- kills and signals (subprocesses) ------------------------------------------------


def _start(
    folder: Path, out: Path, tag: str, *extra: str, ignoring: int | None = None
) -> subprocess.Popen[str]:
    """``ocrpool run`` of ``folder`` with the fake engine; ``ignoring``: a signal it is
    started with ignored (as a shell script's background job starts with SIGINT), by a
    shell that ignores it and becomes the run (``preexec_fn`` is unsafe with threads)."""
    shell = []
    if ignoring is not None:
        shell = ["sh", "-c", f'trap "" {signal.Signals(ignoring).name[3:]}; exec "$@"', "sh"]
    return subprocess.Popen(
        [
            *shell,
            *OCRPOOL,
            "run",
            str(folder),
            "--out",
            str(out),
            "--engine",
            "fake",
            "--workers",
            "2",
            "--spares",
            "0",
            "--engine-option",
            "delay=0.05",  # a kill at 20 of 40 records lands 0.5 s before the end
            *extra,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OCRPOOL_TEST_TAG": tag},
    )


def _line_count(out: Path) -> int:
    return out.read_bytes().count(b"\n") if out.exists() else 0


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def _tagged(tag: str) -> Iterator[psutil.Process]:
    """Every live process started under ``tag`` (the command and its workers)."""
    for process in psutil.process_iter():
        try:
            if process.environ().get("OCRPOOL_TEST_TAG") == tag and process.status() != "zombie":
                yield process
        except psutil.Error:
            continue


def _no_process_left(tag: str) -> None:
    _wait_for(lambda: not list(_tagged(tag)), timeout=20)


def _exactly_once(out: Path, folder: Path) -> None:
    paths = [r["path"] for r in records(out)]  # every line parses
    assert sorted(paths) == sorted(str(p) for p in folder.iterdir())
    assert all(r["ok"] for r in records(out))


EXPORTED = {".pdf": "pdf", ".txt": "txt"}


def _whole_exports(out: Path, exports: Path) -> None:
    """Every record lists its exports and they are there; no file under a final name in
    ``exports`` is partial (each holds the fake engine's whole line for its input)."""
    for record in records(out):
        assert set(record["exports"]) == set(EXPORTED.values())
        assert all(Path(path).is_file() for path in record["exports"].values())
    for path in exports.rglob("*"):
        if path.is_file() and path.suffix in EXPORTED:
            stem = Path(path.name.removesuffix(path.suffix)).stem
            if path.suffix == ".pdf":
                (page,) = pypdf.PdfReader(path).pages  # the fake engine's PDF: text under /FakeText
                assert page["/FakeText"] == stem
            else:
                assert path.read_bytes() == f"txt export of {stem}\n".encode()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_resume_after_sigkill_at_a_random_point(many: Path, tmp_path: Path, seed: int) -> None:
    chance = random.Random(seed)
    out = tmp_path / "results.jsonl"
    tag = uuid.uuid4().hex
    proc = _start(many, out, tag)
    point = chance.randint(1, 20)
    _wait_for(lambda: _line_count(out) >= point)
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL  # killed mid-run, not after the end
    assert _line_count(out) < 40
    _no_process_left(tag)
    with out.open("ab") as handle:  # as if the kill had landed in the middle of a write
        handle.write(b'{"path":"' + str(many / "page 00.png").encode() + b'","si')
    proc = _start(many, out, tag)
    assert proc.wait(timeout=60) == ExitCode.OK
    _exactly_once(out, many)


@pytest.mark.slow
def test_resume_after_sigkill_with_exports(many: Path, tmp_path: Path) -> None:
    out, exports = tmp_path / "results.jsonl", tmp_path / "exports"
    tag = uuid.uuid4().hex
    args = ("--export", "pdf,txt", "--export-dir", str(exports))
    proc = _start(many, out, tag, *args)
    _wait_for(lambda: _line_count(out) >= random.Random(4).randint(1, 20))
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    _no_process_left(tag)
    _whole_exports(out, exports)  # what the killed run recorded has its exports, whole
    assert _start(many, out, tag, *args).wait(timeout=60) == ExitCode.OK
    _exactly_once(out, many)
    _whole_exports(out, exports)
    files = sorted(p.name for p in exports.rglob("*") if p.is_file())
    assert files == sorted(f"{p.name}{suffix}" for p in many.iterdir() for suffix in EXPORTED)


@pytest.mark.slow
def test_resume_after_sigkill_with_sqlite(many: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.db"
    tag = uuid.uuid4().hex

    def rows() -> int:
        try:
            with sqlite3.connect(out) as db:
                return int(db.execute("SELECT count(*) FROM results").fetchone()[0])
        except sqlite3.Error:
            return 0

    proc = _start(many, out, tag, "--format", "sqlite")
    point = random.Random(3).randint(1, 20)
    _wait_for(lambda: rows() >= point)
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert rows() < 40
    _no_process_left(tag)
    assert _start(many, out, tag, "--format", "sqlite").wait(timeout=60) == ExitCode.OK
    with sqlite3.connect(out) as db:
        paths = [p for (p,) in db.execute("SELECT path FROM results WHERE ok")]
    assert sorted(paths) == sorted(str(p) for p in many.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_exits_130_cleanly_and_the_next_run_resumes(
    many: Path, tmp_path: Path, signum: int
) -> None:
    out, exports = tmp_path / "results.jsonl", tmp_path / "exports"
    tag = uuid.uuid4().hex
    args = ("--export", "pdf,txt", "--export-dir", str(exports))
    proc = _start(many, out, tag, *args)
    _wait_for(lambda: _line_count(out) >= 5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED
    assert "interrupted (run the same command again to resume)" in err
    _no_process_left(tag)
    assert out.read_bytes().endswith(b"\n")
    assert 5 <= len(records(out)) < 40
    _whole_exports(out, exports)
    assert _start(many, out, tag, *args).wait(timeout=60) == ExitCode.OK
    _exactly_once(out, many)
    _whole_exports(out, exports)


@pytest.mark.slow
def test_a_stop_signal_while_the_workers_still_start_ends_the_run_at_once(
    many: Path, tmp_path: Path
) -> None:
    """The run does not wait for its pool to be warm (here never: each start hangs, until
    the default ``start_timeout`` of 120 s), so a stop is not deferred until then."""
    out = tmp_path / "results.jsonl"
    tag = uuid.uuid4().hex
    proc = _start(many, out, tag, "--engine-option", "fail_start=hang")
    _wait_for(lambda: len(list(_tagged(tag))) >= 3)  # the run and its two starting workers
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "interrupted (run the same command again to resume)" in err
    _no_process_left(tag)
    assert _line_count(out) == 0


@pytest.mark.slow
def test_a_stop_signal_ignored_at_start_does_not_stop_the_run(many: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    tag = uuid.uuid4().hex
    proc = _start(many, out, tag, ignoring=signal.SIGINT)
    _wait_for(lambda: _line_count(out) >= 5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.OK, err
    assert "interrupted" not in err
    _exactly_once(out, many)


# ---- the real engine -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.aspose
def test_aspose_reads_the_example_images(tmp_path: Path) -> None:
    """With searchable PDFs, pages turned upright and spell-check."""
    examples = REPO / "examples" / "images"
    upside_down = REPO / "tests" / "data" / "phototest-rotated-180.png"
    out = tmp_path / "results.jsonl"
    code = run(
        str(examples / "phototest.tif"),
        str(examples / "eurotext.tif"),
        str(upside_down),
        "--out",
        str(out),
        "--export",
        "pdf",
        "--spellcheck",
        "eng",
        "--rotate-pages",
        "--workers",
        "1",
        "--spares",
        "0",
    )
    assert code == ExitCode.OK
    by_name = {Path(p).name: r for p, r in last_by_path(out).items()}
    pages = {name: r["pages"][0] for name, r in by_name.items()}
    assert pages["phototest.tif"]["text"].startswith("This is a lot of 12 point text")
    assert pages["eurotext.tif"]["text"].startswith("The (quick) [brown] {fox} jumps!")
    upright = pages["phototest-rotated-180.png"]
    assert upright["text"].startswith("This is a lot of 12 point text")
    assert (upright["rotation"], upright["empty"]) == (180.0, False)
    assert pages["eurotext.tif"]["corrected_text"] != pages["eurotext.tif"]["text"]
    pdf = pypdf.PdfReader(by_name["phototest.tif"]["exports"]["pdf"])
    assert "This is a lot of 12 point text" in " ".join(pdf.pages[0].extract_text().split())
    assert Path(by_name["eurotext.tif"]["exports"]["pdf"]).parent == (
        tmp_path / "results-exports" / str(examples).lstrip("/")
    )


@pytest.mark.slow
@pytest.mark.aspose
def test_aspose_multipage_tiff_with_detail_into_sqlite(tmp_path: Path) -> None:
    out = tmp_path / "results.db"
    tiff = REPO / "examples" / "images" / "multipage-3.tif"
    args = [str(tiff), "--out", str(out), "--format", "sqlite", "--detail", "--workers", "1"]
    assert run(*args, "--spares", "0") == ExitCode.OK
    with sqlite3.connect(out) as db:
        (pages_json,) = db.execute("SELECT pages FROM results").fetchone()
    pages = json.loads(pages_json)
    assert len(pages) == 3
    first_line = pages[0]["lines"][0]
    assert first_line["text"].startswith("This is a lot of 12 point text")
    assert len(first_line["box"]) == 4


@pytest.mark.slow
def test_stdout_at_the_file_size_limit_keeps_what_the_file_held(
    images: Path, tmp_path: Path
) -> None:
    """``ocrpool run ... -o - >> log`` under ``ulimit -f``: exit 3, earlier lines kept."""
    log = tmp_path / "log"
    earlier = b"x" * 3000 + b"\n"
    log.write_bytes(earlier)
    limit = len(earlier) + 100  # room for no whole record

    def at_the_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with log.open("ab") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "ocrpool", "run", str(images), "--out", "-", *FAST, "-q"],
            cwd=REPO,
            stdout=stdout,
            preexec_fn=at_the_limit,
            check=False,
        )
    assert done.returncode == ExitCode.OUTPUT_FAILED
    assert log.read_bytes() == earlier
