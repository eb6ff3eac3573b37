"""``run_batch`` through its pool seam: an in-process pool that answers like the fake
engine (the file's stem), so each case runs in milliseconds. The real pool and the CLI are
covered end to end in test_cli_run.py."""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_batch_admission import write_png

from ocrpool.batch import BatchOptions, OutputFormat, OutputRefused, outpath, run_batch, runner
from ocrpool.batch.errors import InputNotFound
from ocrpool.batch.ledger import Verdict
from ocrpool.batch.summary import Outcome
from ocrpool.batch.txt import RECORDS_NAME
from ocrpool.errors import EngineStartError, OcrPoolError, OutOfResources, WorkerCrashed
from ocrpool.exports import Export, ExportFormat
from ocrpool.results import OcrResult, Page
from ocrpool.stats import PoolState, PoolStats

PDF_AND_HOCR = (ExportFormat.PDF, ExportFormat.HOCR)


class InlinePool:
    """Answers in the caller's thread; ``crash`` in a name fails, ``blank`` gives no text,
    ``stop_after`` results in, the caller is interrupted (as Ctrl-C would), ``error`` fails
    every job, and each result carries the ``exports`` asked for."""

    def __init__(
        self,
        stop_after: int | None = None,
        error: OcrPoolError | None = None,
        exports: tuple[ExportFormat, ...] = (),
    ) -> None:
        self.stop_after = stop_after
        self.error = error
        self.exports = exports
        self.sent: list[str] = []
        self.ended_by: str | None = None

    def imap(self, sources: Iterable[str], **_: object) -> Iterator[OcrResult]:
        for source in sources:
            if self.stop_after is not None and len(self.sent) == self.stop_after:
                raise KeyboardInterrupt
            self.sent.append(source)
            if self.error is not None or "crash" in source:
                yield OcrResult(source, error=self.error or WorkerCrashed("signal 11"))
            else:
                text = "" if "blank" in source else Path(source).stem
                exports = tuple(Export(f, exported(f, source)) for f in self.exports)
                yield OcrResult(source, (Page(text),), worker_pid=1, rss_mb=50.0, exports=exports)

    def stats(self) -> PoolStats:
        return PoolStats(PoolState.RUNNING, (), {"max_jobs": 1}, 0, 0, 0, 0, (), 0)

    def close(self) -> None:
        self.ended_by = self.ended_by or "close"

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        self.ended_by = "cancel" if cancel_pending else "shutdown"


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png", "sub/c.png", "sub/crash.png"):
        write_png(folder / name)
    (folder / "README.md").write_text("notes")
    return folder


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def exported(fmt: ExportFormat, source: str) -> bytes:
    return f"{fmt.value} of {source}".encode()


def test_every_input_is_recorded_once(images: Path, tmp_path: Path) -> None:
    pool = InlinePool()
    out = tmp_path / "r.jsonl"
    summary = run_batch(BatchOptions(str(out), (str(images),)), lambda: pool)
    records = {r["path"]: r for r in _records(out)}
    assert sorted(records) == sorted(
        str(images / n) for n in ("a.png", "b.png", "sub/c.png", "sub/crash.png")
    )
    assert records[str(images / "a.png")]["pages"] == [{"text": "a", "empty": False}]
    assert records[str(images / "sub/crash.png")]["error"] == {
        "type": "WorkerCrashed",
        "message": "signal 11",
        "exitcode": None,
        "signal": None,
        "stderr_tail": "",
    }
    tally = summary.tally
    assert (tally.ok, dict(tally.failed), dict(tally.skipped)) == (
        3,
        {"WorkerCrashed": 1},
        {"not an image": 1},
    )
    assert (tally.queued, tally.scanning, tally.peak_rss_mb) == (4, False, 50.0)
    assert tally.worker_exits == {"max_jobs": 1}
    assert summary.outcome is Outcome.SOME_FAILED
    assert pool.ended_by == "close"


def test_a_second_run_does_nothing_and_starts_no_pool(images: Path, tmp_path: Path) -> None:
    options = BatchOptions(str(tmp_path / "r.jsonl"), (str(images),))
    run_batch(options, InlinePool)

    def no_pool() -> InlinePool:
        raise AssertionError("nothing to OCR: the pool must not start")

    summary = run_batch(options, no_pool)
    assert summary.tally.earlier == {Verdict.DONE: 3, Verdict.FAILED_BEFORE: 1}
    assert summary.outcome is Outcome.SOME_FAILED
    assert len(_records(tmp_path / "r.jsonl")) == 4


def test_retry_failed_sends_only_the_failures_and_the_last_record_wins(
    images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    run_batch(BatchOptions(str(out), (str(images),)), InlinePool)
    (images / "sub/crash.png").rename(images / "sub/fixed.png")
    (images / "sub/crash.png").symlink_to(images / "sub/fixed.png")  # same content, new name
    pool = InlinePool()
    summary = run_batch(BatchOptions(str(out), (str(images),), retry_failed=True), lambda: pool)
    assert sorted(pool.sent) == [str(images / "sub/crash.png"), str(images / "sub/fixed.png")]
    assert summary.outcome is Outcome.SOME_FAILED  # crash.png still has "crash" in its name
    last = {r["path"]: r["ok"] for r in _records(out)}
    assert last == {str(images / n): n != "sub/crash.png" for n in _names(images)}


def _names(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*.png")]


def test_overlapping_inputs_are_done_once(images: Path, tmp_path: Path) -> None:
    pool = InlinePool()
    inputs = (str(images), str(images / "a.png"), f"{images}/*.png")
    summary = run_batch(BatchOptions(str(tmp_path / "r.jsonl"), inputs), lambda: pool)
    assert sorted(pool.sent) == sorted(set(pool.sent))
    assert summary.tally.earlier[Verdict.DUPLICATE] == 3


@pytest.mark.parametrize(
    ("given", "refused"),
    [({"max_pixels": -5}, "max_pixels"), ({"max_failures": 0}, "max_failures")],
)
def test_options_the_command_line_refuses_are_refused_from_python_too(
    given: dict[str, int], refused: str
) -> None:
    """A negative max_pixels would refuse every image, a max_failures of 0 stop the run
    at its first record."""
    with pytest.raises(ValueError, match=refused):
        BatchOptions("r.jsonl", ("in",), **given)  # type: ignore[arg-type]


def test_strict_records_non_images_as_failures(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    summary = run_batch(BatchOptions(str(out), (str(images),), strict=True), InlinePool)
    readme = [r for r in _records(out) if str(r["path"]).endswith("README.md")]
    assert readme[0]["error"] == {
        "type": "InvalidInput",
        "message": "not an image",
        "input": str(images / "README.md"),
    }
    assert not summary.tally.skipped


def test_an_interrupted_run_cancels_the_pool_and_the_next_run_finishes(
    images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    options = BatchOptions(str(out), (str(images),))
    pool = InlinePool(stop_after=2)
    summary = run_batch(options, lambda: pool)
    assert summary.interrupted and summary.outcome is Outcome.INTERRUPTED
    assert pool.ended_by == "cancel"
    assert len(_records(out)) == 2
    run_batch(options, InlinePool)
    paths = [r["path"] for r in _records(out)]
    assert sorted(paths) == sorted(set(paths)) and len(paths) == 4


def test_an_engine_that_stops_starting_leaves_inputs_unrecorded(
    images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    pool = InlinePool(error=EngineStartError("no runtime"))
    with pytest.raises(EngineStartError):
        run_batch(BatchOptions(str(out), (str(images),)), lambda: pool)
    assert not out.exists() and pool.ended_by == "cancel"


def _short_of_descriptors_reading(
    monkeypatch: pytest.MonkeyPatch, name: str, times: int | None
) -> list[str]:
    """Admission of ``name`` fails with EMFILE ``times`` times (``None``: always), as in
    a process at its descriptor limit; the paths admitted are returned."""
    real = runner.admit
    tried: list[str] = []
    monkeypatch.setattr(runner, "_ROOM_WAITS_S", (0.0, 0.0, 0.0))

    def admit(path: str, *args: Any, **kwargs: Any) -> Any:
        tried.append(path)
        if path.endswith(name) and (times is None or tried.count(path) <= times):
            raise OutOfResources(f"cannot read {path}: Too many open files", path=path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(runner, "admit", admit)
    return tried


def test_an_input_read_while_the_process_is_out_of_descriptors_is_tried_again(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.jsonl"
    _short_of_descriptors_reading(monkeypatch, "b.png", times=2)
    summary = run_batch(BatchOptions(str(out), (str(images),)), InlinePool)
    records = {Path(r["path"]).name: r for r in _records(out)}
    assert records["b.png"]["pages"] == [{"text": "b", "empty": False}]
    assert summary.outcome is Outcome.SOME_FAILED  # crash.png, as always


def test_an_input_the_process_is_never_able_to_read_stops_the_run_unrecorded(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process at its descriptor limit recorded good inputs as failed ``InvalidInput``
    ("cannot read: Too many open files"), and a rerun kept them failed."""
    out = tmp_path / "r.jsonl"
    options = BatchOptions(str(out), (str(images),))
    _short_of_descriptors_reading(monkeypatch, "b.png", times=None)
    with pytest.raises(OutOfResources, match="Too many open files"):
        run_batch(options, InlinePool)
    assert "b.png" not in {Path(r["path"]).name for r in _records(out)}
    monkeypatch.undo()
    run_batch(options, InlinePool)  # the same command, with room again
    names = sorted(Path(r["path"]).name for r in _records(out))
    assert names == ["a.png", "b.png", "c.png", "crash.png"]


def test_every_write_is_guarded(images: Path, tmp_path: Path) -> None:
    guarded: list[int] = []

    @contextmanager
    def guard() -> Iterator[None]:
        guarded.append(len((tmp_path / "r.jsonl").read_text().splitlines()))
        yield

    run_batch(BatchOptions(str(tmp_path / "r.jsonl"), (str(images),)), InlinePool, guard=guard)
    assert guarded == [0, 1, 2, 3]


def test_paths_from_a_list(images: Path, tmp_path: Path) -> None:
    listing = f"{images / 'a.png'}\n{images / 'gone.png'}\n"
    expected = [(str(images / "a.png"), True), (str(images / "gone.png"), False)]
    out = tmp_path / "r.jsonl"
    run_batch(BatchOptions(str(out), from_list="-"), InlinePool, stdin=io.StringIO(listing))
    assert sorted((r["path"], r["ok"]) for r in _records(out)) == expected
    (tmp_path / "list.txt").write_text(listing)
    out = tmp_path / "r2.jsonl"
    run_batch(BatchOptions(str(out), from_list=str(tmp_path / "list.txt")), InlinePool)
    assert sorted((r["path"], r["ok"]) for r in _records(out)) == expected
    with pytest.raises(InputNotFound, match="cannot read the list"):
        run_batch(BatchOptions(str(out), from_list=str(tmp_path / "nope.txt")), InlinePool)


def test_a_nul_separated_list_is_read_as_it_comes(images: Path, tmp_path: Path) -> None:
    """``find -print0 | ocrpool run --from-list - -0``: the first name reaches the pool
    while the list is still being written (the whole list was read first)."""
    read_end, write_end = os.pipe()
    first_sent = threading.Event()
    in_time: list[bool] = []

    def find() -> None:
        with open(write_end, "wb", buffering=0) as pipe:
            pipe.write(f"{images / 'a.png'}\0".encode())
            in_time.append(first_sent.wait(timeout=10))
            pipe.write(f"{images / 'b.png'}\0".encode())

    class Watching(InlinePool):
        def imap(self, sources: Iterable[str], **_: object) -> Iterator[OcrResult]:
            for result in super().imap(sources):
                first_sent.set()
                yield result

    writer = threading.Thread(target=find)
    writer.start()
    options = BatchOptions(str(tmp_path / "r.jsonl"), from_list=f"/dev/fd/{read_end}")
    run_batch(dataclasses.replace(options, list_separator="\0"), Watching)
    writer.join()
    os.close(read_end)
    assert in_time == [True]
    assert len(_records(tmp_path / "r.jsonl")) == 2


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_output_inside_an_input_folder_needs_permission(images: Path, fmt: OutputFormat) -> None:
    out = images / "results"
    with pytest.raises(OutputRefused, match="--allow-out-inside-input"):
        run_batch(BatchOptions(str(out), (str(images),), format=fmt), InlinePool)
    assert not out.exists()
    options = BatchOptions(
        str(out), (str(images),), format=fmt, allow_out_inside_input=True, strict=True
    )
    first = run_batch(options, InlinePool)
    assert first.tally.failed == {"WorkerCrashed": 1, "InvalidInput": 1}  # crash.png, README.md
    second = run_batch(options, InlinePool)  # must not take its own output for an input
    assert second.tally.recorded == 0
    assert second.tally.earlier == {Verdict.DONE: 3, Verdict.FAILED_BEFORE: 2}


def test_a_txt_export_into_the_txt_output_folder_is_refused(images: Path, tmp_path: Path) -> None:
    """Each input's text and its txt export would be one file, written twice."""
    out = tmp_path / "texts"
    txt = (ExportFormat.TXT,)
    same = BatchOptions(
        str(out), (str(images),), format=OutputFormat.TXT, exports=txt, export_dir=str(out)
    )
    with pytest.raises(OutputRefused, match="give --export-dir another folder"):
        run_batch(same, InlinePool)
    assert not out.exists()
    apart = dataclasses.replace(same, export_dir=str(tmp_path / "exports"))
    assert run_batch(apart, InlinePool).tally.ok == 3


def test_missing_inputs_and_overwriting_an_input_are_refused(images: Path, tmp_path: Path) -> None:
    with pytest.raises(InputNotFound, match="no such file or folder: nope"):
        run_batch(BatchOptions(str(tmp_path / "r.jsonl"), ("nope",)), InlinePool)
    with pytest.raises(OutputRefused, match="it is an input"):
        run_batch(BatchOptions(str(images / "a.png"), (str(images / "a.png"),)), InlinePool)
    with pytest.raises(OutputRefused, match="it is an image or PDF"):
        run_batch(BatchOptions(str(images / "b.png"), (str(images / "a.png"),)), InlinePool)


def test_an_output_that_cannot_be_read_is_refused(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing output this user may not read (``chmod 000``) is refused, not a
    traceback: root reads anything, so the refusal to read is injected."""

    def denied(path: str) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    out = tmp_path / "r.jsonl"
    out.write_text("")
    monkeypatch.setattr(outpath, "sniff_file", denied)
    with pytest.raises(OutputRefused, match=r"cannot open .*: Permission denied"):
        run_batch(BatchOptions(str(out), (str(images),)), InlinePool)


# ---- exports and pages without text ---------------------------------------------------


def test_exports_are_written_before_their_record_and_listed_in_it(
    images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    seen_at_write: dict[str, bool] = {}

    @contextmanager
    def guard() -> Iterator[None]:
        yield
        record = _records(out)[-1]  # the record just written: its exports were already there
        seen_at_write[record["path"]] = all(Path(p).is_file() for p in record["exports"].values())

    options = BatchOptions(str(out), (str(images),), exports=PDF_AND_HOCR)
    run_batch(options, lambda: InlinePool(exports=PDF_AND_HOCR), guard=guard)
    folder = tmp_path / "r-exports"  # the default: next to --out
    by_path = {r["path"]: r for r in _records(out)}
    a = str(images / "a.png")
    assert by_path[a]["exports"] == {
        "pdf": str(folder / a.lstrip("/")) + ".pdf",
        "hocr": str(folder / a.lstrip("/")) + ".hocr",
    }
    assert Path(by_path[a]["exports"]["pdf"]).read_bytes() == exported(ExportFormat.PDF, a)
    assert by_path[str(images / "sub/crash.png")]["exports"] == {}
    assert all(seen_at_write.values()) and len(seen_at_write) == 4
    assert not list(folder.rglob("*.part"))


def test_a_rerun_asking_for_another_format_redoes_the_inputs_without_it(
    images: Path, tmp_path: Path
) -> None:
    out, folder = tmp_path / "r.jsonl", tmp_path / "exports"
    pdf = (ExportFormat.PDF,)
    options = BatchOptions(str(out), (str(images),), exports=pdf, export_dir=str(folder))
    run_batch(options, lambda: InlinePool(exports=pdf))
    assert len(list(folder.rglob("*.pdf"))) == 3
    pool = InlinePool(exports=PDF_AND_HOCR)
    run_batch(dataclasses.replace(options, exports=PDF_AND_HOCR), lambda: pool)
    assert sorted(pool.sent) == sorted(str(images / n) for n in ("a.png", "b.png", "sub/c.png"))
    assert len(list(folder.rglob("*.hocr"))) == 3
    summary = run_batch(options, InlinePool)  # pdf alone again: every record has it
    assert summary.tally.earlier[Verdict.DONE] == 3


@pytest.mark.parametrize("fmt", [OutputFormat.TXT, OutputFormat.JSONL])
def test_an_output_name_the_system_refuses_fails_that_input_alone(
    images: Path, tmp_path: Path, fmt: OutputFormat
) -> None:
    """A mirrored name too long with ``.part`` (a text file or an export), a folder where
    a file goes, a file where a folder goes: each is one input's fault, never the run's."""
    long = images / ("x" * (255 - len(".png.txt.part") + 1) + ".png")
    write_png(long)
    out = tmp_path / "out"
    folder = tmp_path / "exports"
    (images / "sub" / "d.png").write_bytes((images / "a.png").read_bytes())
    mirrored = {OutputFormat.TXT: out, OutputFormat.JSONL: folder}[fmt]
    suffix = {OutputFormat.TXT: ".txt", OutputFormat.JSONL: ".pdf"}[fmt]
    (mirrored / str(images / "a.png").lstrip("/")).with_name("a.png" + suffix).mkdir(parents=True)
    (mirrored / str(images / "sub").lstrip("/")).write_text("a file where a folder goes")
    options = BatchOptions(
        str(tmp_path / "r.jsonl") if fmt is OutputFormat.JSONL else str(out),
        (str(images),),
        format=fmt,
        exports=(ExportFormat.PDF,),
        export_dir=str(folder),
    )
    summary = run_batch(options, lambda: InlinePool(exports=(ExportFormat.PDF,)))
    records = out / RECORDS_NAME if fmt is OutputFormat.TXT else tmp_path / "r.jsonl"
    by_path = {Path(r["path"]).name: r for r in _records(records)}
    assert by_path["b.png"]["ok"]
    refused = {name: r["error"] for name, r in by_path.items() if not r["ok"]}
    assert set(refused) == {long.name, "a.png", "c.png", "d.png", "crash.png"}
    reasons = {name: e["reason"] for name, e in refused.items() if name != "crash.png"}
    in_the_way = f"{mirrored / str(images / 'sub').lstrip('/')} is a file, not a folder"
    assert reasons == {
        long.name: "File name too long",
        "a.png": "Is a directory",
        "c.png": in_the_way,
        "d.png": in_the_way,
    }
    assert all(e["type"] == "OutputNameRefused" for n, e in refused.items() if n != "crash.png")
    assert by_path["a.png"]["exports"] == {} and by_path["a.png"]["pages"]
    assert summary.outcome is Outcome.SOME_FAILED
    rerun = InlinePool()
    run_batch(options, lambda: rerun)
    assert rerun.sent == []  # recorded as failed: --retry-failed retries them


def test_the_runs_own_folders_are_never_inputs_however_listed(images: Path, tmp_path: Path) -> None:
    """Files under the text folder or the export folder, and the records file, from a
    list (by name or through a symlink) or a glob, are passed over like the walk does."""
    out, folder = tmp_path / "texts", tmp_path / "exports"
    options = BatchOptions(
        str(out),
        format=OutputFormat.TXT,
        exports=(ExportFormat.PDF,),
        export_dir=str(folder),
        strict=True,
        allow_out_inside_input=True,
    )
    pdf = (ExportFormat.PDF,)
    run_batch(dataclasses.replace(options, inputs=(str(images),)), lambda: InlinePool(exports=pdf))
    write_png(out / "planted.png")
    write_png(folder / "planted.png")
    (tmp_path / "link").symlink_to(folder)
    own = sorted(str(p) for p in [*out.rglob("*"), *folder.rglob("*")] if p.is_file())
    listing = "\n".join([*own, str(tmp_path / "link" / "planted.png")]) + "\n"
    assert str(out / RECORDS_NAME) in own and len(own) == 9
    records = (out / RECORDS_NAME).read_bytes()
    pool = InlinePool()
    listed = dataclasses.replace(options, from_list="-", inputs=(f"{tmp_path}/**",))
    summary = run_batch(listed, lambda: pool, stdin=io.StringIO(listing))
    assert pool.sent == []
    assert (out / RECORDS_NAME).read_bytes() == records
    assert summary.tally.earlier[Verdict.DONE] == 3


def test_pages_without_text_are_counted_and_strict_fails_them(images: Path, tmp_path: Path) -> None:
    write_png(images / "blank.png")
    out = tmp_path / "r.jsonl"
    summary = run_batch(BatchOptions(str(out), (str(images / "blank.png"),)), InlinePool)
    assert summary.tally.empty_pages == 1 and summary.outcome is Outcome.OK
    assert _records(out)[0]["pages"] == [{"text": "", "empty": True}]

    out = tmp_path / "strict.jsonl"
    options = BatchOptions(
        str(out), (str(images / "blank.png"),), strict=True, exports=PDF_AND_HOCR
    )
    summary = run_batch(options, lambda: InlinePool(exports=PDF_AND_HOCR))
    record = _records(out)[0]
    assert record["error"] == {
        "type": "EmptyPages",
        "message": "no text on page 1 (--strict)",
        "pages": [1],
    }
    assert record["exports"] == {}
    assert not [p for p in (tmp_path / "strict-exports").rglob("*") if p.is_file()]
    assert summary.tally.failed == {"EmptyPages": 1} and summary.tally.empty_pages == 1


def test_exports_inside_an_input_folder_need_permission_and_are_never_inputs(
    images: Path, tmp_path: Path
) -> None:
    folder = images / "exports"
    options = BatchOptions(
        str(tmp_path / "r.jsonl"), (str(images),), exports=PDF_AND_HOCR, export_dir=str(folder)
    )
    with pytest.raises(OutputRefused, match="--allow-out-inside-input"):
        run_batch(options, lambda: InlinePool(exports=PDF_AND_HOCR))
    assert not folder.exists()
    allowed = dataclasses.replace(options, allow_out_inside_input=True)
    run_batch(allowed, lambda: InlinePool(exports=PDF_AND_HOCR))
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4 a PDF is an input anywhere else")
    pool = InlinePool(exports=PDF_AND_HOCR)
    summary = run_batch(allowed, lambda: pool)
    assert pool.sent == [] and summary.tally.earlier[Verdict.DONE] == 3


def _listed(folder: Path, names: list[str]) -> str:
    """The lines of a ``from_list`` naming ``names`` (PNGs created in ``folder``), in order."""
    folder.mkdir(exist_ok=True)
    for name in names:
        write_png(folder / name)
    return "".join(f"{folder / name}\n" for name in names)


def test_max_failures_in_a_row_stops_the_run_and_a_rerun_goes_on(tmp_path: Path) -> None:
    names = ["ok1.png", "crash1.png", "crash2.png", "ok2.png"]  # a success resets the count
    names += ["crash3.png", "crash4.png", "crash5.png", "ok3.png", "ok4.png"]
    listing = _listed(tmp_path / "in", names)
    out = tmp_path / "r.jsonl"
    options = BatchOptions(str(out), from_list="-", max_failures=3)
    pool = InlinePool()
    summary = run_batch(options, lambda: pool, stdin=io.StringIO(listing))
    assert summary.outcome is Outcome.TOO_MANY_FAILURES and summary.stopped_after == 3
    assert pool.ended_by == "cancel"
    assert [Path(r["path"]).name for r in _records(out)] == names[:7]
    assert "stopped: 3 inputs in a row failed" in summary.lines()[0]
    assert summary.to_dict()["outcome"] == "too_many_failures"

    pool = InlinePool()
    summary = run_batch(options, lambda: pool, stdin=io.StringIO(listing))
    assert [Path(p).name for p in pool.sent] == ["ok3.png", "ok4.png"]
    assert summary.outcome is Outcome.SOME_FAILED  # the crashes of the first run remain
    assert sorted(Path(r["path"]).name for r in _records(out)) == sorted(names)


def test_failures_before_the_engine_count_too(tmp_path: Path) -> None:
    listing = _listed(tmp_path / "in", ["ok.png"]) + f"{tmp_path / 'gone1.png'}\n"
    listing += f"{tmp_path / 'gone2.png'}\n" + _listed(tmp_path / "in", ["later.png"])
    out = tmp_path / "r.jsonl"
    options = BatchOptions(str(out), from_list="-", max_failures=2)
    summary = run_batch(options, InlinePool, stdin=io.StringIO(listing))
    assert summary.outcome is Outcome.TOO_MANY_FAILURES
    assert [(Path(r["path"]).name, r["ok"]) for r in _records(out)] == [
        ("ok.png", True),
        ("gone1.png", False),
        ("gone2.png", False),
    ]
