"""The Executor-like surface: submit, imap, threads, asyncio, results and errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import fake_pool, make_document, make_inputs

from ocrpool import (
    EngineStartError,
    InvalidInput,
    JobOptions,
    JobTimeout,
    MemoryLimitExceeded,
    OcrResult,
    PoolClosed,
    WorkerCrashed,
)


def test_result_carries_text_attempts_worker_and_memory(tmp_path: Path) -> None:
    (path,) = make_inputs(tmp_path, ["invoice-42.png"])
    with fake_pool(workers=1, spares=0) as pool:
        result = pool.submit(path).result()
        worker_pid = pool.stats().workers[0].pid
    assert result.ok and result.text == "invoice-42" and result.input == path
    assert result.worker_pid == worker_pid
    assert result.rss_mb is not None and result.rss_mb > 5
    assert result.elapsed_s > 0
    assert [(a.worker_pid, a.outcome) for a in result.attempts] == [(worker_pid, "ok")]


def test_bytes_and_pathlike_inputs(tmp_path: Path) -> None:
    (path,) = make_inputs(tmp_path, ["scan.png"])
    with fake_pool(workers=1, spares=0) as pool:
        assert pool.recognize(Path(path)).text == "scan"
        by_bytes = pool.recognize(b"12345", label="upload-1")
        unlabelled = pool.recognize(b"123")
        with pytest.raises(TypeError):
            pool.submit(42)  # type: ignore[arg-type]
        # a mistyped label or options is told where it is made, not as an AttributeError
        # from the pool's inside, and nothing is queued for it
        with pytest.raises(TypeError, match="label must be a str, not int"):
            pool.submit(path, label=7)  # type: ignore[arg-type]
        assert pool.recognize(path, label=Path("a/b.png")).input == "a/b.png"  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="options must be a JobOptions, not dict"):
            pool.submit_result(path, options={"language": "en"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="an export format is a name, not int 5"):
            JobOptions(exports=("pdf", 5))  # type: ignore[arg-type]
        assert pool.stats().completed == 4
    assert (by_bytes.input, by_bytes.text) == ("upload-1", "5 bytes")
    assert unlabelled.input == "<3 bytes>"


def test_imap_never_raises_and_keeps_order(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"{i:02d}.png" for i in range(12)])
    paths.insert(3, str(tmp_path / "missing.png"))
    with fake_pool(workers=2, spares=0, engine_options={"delay": 0.01}) as pool:
        results = list(pool.imap(paths))
    assert [r.input for r in results] == paths
    assert [type(r.error) for r in results if not r.ok] == [InvalidInput]


def test_imap_refuses_one_source_given_for_many(tmp_path: Path) -> None:
    """Iterated, one path would be its characters, each a job failing as a missing file."""
    (path,) = make_inputs(tmp_path, ["scan.png"])
    with fake_pool(workers=1, spares=0) as pool:
        for one in (path, b"12345"):
            with pytest.raises(TypeError, match="expected an iterable of sources, not one"):
                next(pool.imap(one))  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="expected an iterable of sources, not one"):
                asyncio.run(anext(pool.aimap(one)))  # type: ignore[arg-type]
        assert [result.text for result in pool.map([path])] == ["scan"]
        assert pool.stats().submitted == 1


def test_imap_refuses_a_waiting_that_cannot_be_called(tmp_path: Path) -> None:
    """Told before any job, not as a ``TypeError`` once a job has run past imap's first
    wait for it (half a second)."""
    (path,) = make_inputs(tmp_path, ["scan.png"])
    with fake_pool(workers=1, spares=0) as pool:
        with pytest.raises(TypeError, match="waiting must be callable or None, not int"):
            next(pool.imap([path], waiting=5))  # type: ignore[arg-type]
        assert pool.stats().submitted == 0


def test_imap_left_early_cancels_the_jobs_it_submitted_that_have_not_started(
    tmp_path: Path,
) -> None:
    """As ``Executor.map``: a ``break`` closes the generator, and the jobs of its window
    still queued are not run for nobody (one worker: one job running, one held by it)."""
    paths = make_inputs(tmp_path, [f"{i}.png" for i in range(12)])
    with fake_pool(workers=1, spares=0, max_in_flight=8, engine_options={"delay": 0.5}) as pool:
        for _ in pool.imap(paths):
            break
        pool.close()
        stats = pool.stats()
    assert stats.submitted == 8
    assert stats.completed <= 3, stats  # the first, and at most the two a worker held


def test_aimap_closed_or_its_task_cancelled_cancels_the_jobs_not_started(
    tmp_path: Path,
) -> None:
    paths = make_inputs(tmp_path, [f"{i}.png" for i in range(12)])

    async def main() -> None:
        async with contextlib.aclosing(pool.aimap(paths)) as results:
            async for _ in results:
                break
        consumer = asyncio.create_task(anext(pool.aimap(paths[:8])))
        while pool.stats().submitted < 16:  # the window submitted, waiting on the first
            await asyncio.sleep(0.01)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer

    with fake_pool(workers=1, spares=0, max_in_flight=8, engine_options={"delay": 0.5}) as pool:
        asyncio.run(main())
        pool.close()
        stats = pool.stats()
    assert stats.submitted == 16
    assert stats.completed <= 6, stats  # of each 8: the first, and at most two held


@pytest.mark.slow
def test_imap_consumes_its_input_lazily(tmp_path: Path) -> None:
    (path,) = make_inputs(tmp_path, ["lazy.png"])
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        while True:
            pulled += 1
            yield path

    with fake_pool(workers=2, spares=1, max_in_flight=8) as pool:
        for seen, result in enumerate(pool.imap(endless(), ordered=False), start=1):
            assert result.ok
            assert pulled <= seen + 8
            if seen == 2_000:
                break


@pytest.mark.slow
def test_many_threads_submitting_at_once(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"t{i}.png" for i in range(8)])
    results: list[OcrResult] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    with fake_pool(workers=2, spares=1) as pool:

        def client(path: str) -> None:
            start.wait()
            futures = [pool.submit(path) for _ in range(100)]
            mine = [f.result() for f in futures]
            with lock:
                results.extend(mine)

        threads = [threading.Thread(target=client, args=(p,)) for p in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert pool.stats().completed == 800
    assert Counter(r.input for r in results) == {p: 100 for p in paths}
    assert all(r.ok for r in results)


def test_asyncio_recognize_and_async_iteration(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path, [f"a{i}.png" for i in range(20)])

    async def main() -> tuple[list[str], list[str]]:
        with fake_pool(workers=2, spares=0, engine_options={"delay": 0.01}) as pool:
            gathered = await asyncio.gather(*(pool.arecognize(p) for p in paths[:5]))
            streamed = [r.text async for r in pool.aimap(paths, ordered=False)]
            with pytest.raises(InvalidInput):
                await pool.arecognize(str(tmp_path / "nope.png"))
        return [r.text for r in gathered], streamed

    gathered, streamed = asyncio.run(main())
    assert gathered == ["a0", "a1", "a2", "a3", "a4"]
    assert sorted(streamed) == sorted(f"a{i}" for i in range(20))


def test_errors_survive_pickling_with_their_fields() -> None:
    errors = [
        InvalidInput("bad", input="/x.png"),
        WorkerCrashed("died", signal="SIGSEGV", exitcode=-11, stderr_tail="..."),
        MemoryLimitExceeded("big", rss_mb=900.0, limit_mb=800.0, signal="SIGKILL", exitcode=-9),
        JobTimeout("slow", timeout=3.0, stderr_tail=""),
        EngineStartError("no", stderr_tail="tail", attempts=3, exitcode=1),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert copy.to_dict() == error.to_dict()
    assert isinstance(errors[2], WorkerCrashed)
    assert errors[1].to_dict() == {
        "type": "WorkerCrashed",
        "message": "died",
        "exitcode": -11,
        "signal": "SIGSEGV",
        "stderr_tail": "...",
    }


def test_error_fields_are_declared_and_always_present() -> None:
    with pytest.raises(TypeError, match="no field stack"):
        WorkerCrashed("died", stack="...")
    assert MemoryLimitExceeded("big").to_dict() == {
        "type": "MemoryLimitExceeded",
        "message": "big",
        "exitcode": None,
        "signal": None,
        "stderr_tail": "",
        "rss_mb": None,
        "limit_mb": None,
    }


def test_invalid_settings_are_rejected_before_any_worker_starts() -> None:
    for settings in (
        {"workers": 0},
        {"retries": -1},
        {"max_rss_mb": 500, "hard_rss_mb": 100},
        {"max_jobs_per_worker": 0},
        {"job_timeout": 0},
    ):
        with pytest.raises(ValueError):
            fake_pool(**settings)


def test_the_package_loads_names_on_first_use() -> None:
    code = (
        "import sys, ocrpool; lazy = 'ocrpool.pool.executor' not in sys.modules; "
        "missing = [n for n in ocrpool.__all__ if getattr(ocrpool, n, None) is None]; "
        "print(lazy, missing)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "[]"]


def test_a_forked_child_is_refused_rather_than_left_waiting(tmp_path: Path) -> None:
    """A server that makes its pool, then forks (a preloaded app): the child has the
    pool's object but not its thread or workers, so its jobs would wait for ever."""
    (path,) = make_inputs(tmp_path, ["a.png"])
    with fake_pool(workers=1, spares=0) as pool:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit status
            try:
                pool.submit(path)
            except PoolClosed as error:
                pool.shutdown()  # as its `with` would: must neither hang nor touch the pool
                os._exit(0 if "belongs to process" in str(error) else 2)
            except BaseException:
                os._exit(3)
            os._exit(1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert pool.recognize(path).text == "a"  # the parent's pool is untouched


@pytest.mark.parametrize("split_pages", [True, False])
def test_a_relative_path_names_a_file_in_the_callers_folder_as_it_submits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split_pages: bool
) -> None:
    """Not in the folder a worker started in (the pool's first worker's, whatever the
    caller did since): a document is counted and a single image read where the caller
    is when it submits, and the result keeps the path as the caller wrote it."""
    before, after = tmp_path / "before", tmp_path / "after"
    make_document(before / "doc.tif", 5)
    make_document(after / "doc.tif", 8)
    make_inputs(after, ["only-here.png"])
    monkeypatch.chdir(before)
    with fake_pool(workers=1, spares=0, split_pages=split_pages) as pool:
        monkeypatch.chdir(after)
        document = pool.submit("doc.tif").result(timeout=60)
        image = pool.submit("only-here.png").result(timeout=60)
        assert pool.stats().submitted == (9 if split_pages else 2)
    assert len(document.pages) == 8 and document.input == "doc.tif"
    assert image.text == "only-here" and image.input == "only-here.png"
