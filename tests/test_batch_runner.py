"""``run_batch`` through its pool seam: an in-process pool that answers like the fake
engine (the file's stem), so each case runs in milliseconds. The real pool and the CLI are
covered end to end in test_cli_run.py."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_batch_admission import write_png

from ocrpool.batch import BatchOptions, OutputFormat, OutputRefused, run_batch
from ocrpool.batch.errors import InputNotFound
from ocrpool.batch.ledger import Verdict
from ocrpool.batch.summary import Outcome
from ocrpool.errors import EngineStartError, OcrPoolError, WorkerCrashed
from ocrpool.results import OcrResult, Page
from ocrpool.stats import PoolState, PoolStats


class InlinePool:
    """Answers in the caller's thread; ``crash`` in a name fails, ``stop_after`` results in,
    the caller is interrupted (as Ctrl-C would), and ``error`` fails every job."""

    def __init__(self, stop_after: int | None = None, error: OcrPoolError | None = None) -> None:
        self.stop_after = stop_after
        self.error = error
        self.sent: list[str] = []
        self.ended_by: str | None = None

    def imap(self, sources: Iterable[str], *, ordered: bool = True) -> Iterator[OcrResult]:
        for source in sources:
            if self.stop_after is not None and len(self.sent) == self.stop_after:
                raise KeyboardInterrupt
            self.sent.append(source)
            if self.error is not None or "crash" in source:
                yield OcrResult(source, error=self.error or WorkerCrashed("signal 11"))
            else:
                yield OcrResult(source, (Page(Path(source).stem),), worker_pid=1, rss_mb=50.0)

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


def _records(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_every_input_is_recorded_once(images: Path, tmp_path: Path) -> None:
    pool = InlinePool()
    out = tmp_path / "r.jsonl"
    summary = run_batch(BatchOptions(str(out), (str(images),)), lambda: pool)
    records = {r["path"]: r for r in _records(out)}
    assert sorted(records) == sorted(
        str(images / n) for n in ("a.png", "b.png", "sub/c.png", "sub/crash.png")
    )
    assert records[str(images / "a.png")]["pages"] == [{"text": "a"}]
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
    assert out.read_text() == "" and pool.ended_by == "cancel"


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


def test_missing_inputs_and_overwriting_an_input_are_refused(images: Path, tmp_path: Path) -> None:
    with pytest.raises(InputNotFound, match="no such file or folder: nope"):
        run_batch(BatchOptions(str(tmp_path / "r.jsonl"), ("nope",)), InlinePool)
    with pytest.raises(OutputRefused, match="it is an input"):
        run_batch(BatchOptions(str(images / "a.png"), (str(images / "a.png"),)), InlinePool)
    with pytest.raises(OutputRefused, match="it is an image or PDF"):
        run_batch(BatchOptions(str(images / "b.png"), (str(images / "a.png"),)), InlinePool)
