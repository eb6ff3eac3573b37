"""Attacks on the worker-side page count (5da5cfa)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from fakes import fake_pool, make_document, make_inputs

from ocrpool import JobCancelled, OcrResult


def test_a_kill_asked_while_the_count_is_in_the_workers_hands_stops_the_document(
    tmp_path: Path,
) -> None:
    """cancel(kill=True) says True for a document whose count job a worker holds; the
    worker answers its Pages before the kill lands (the count takes microseconds): the
    document must still end with JobCancelled, not run every page."""
    doc = make_document(tmp_path / "doc.tif", 12)
    [warm] = make_inputs(tmp_path, ["warm.png"])
    go, parked = threading.Event(), threading.Event()

    def park(_: Future[OcrResult]) -> None:  # holds the supervisor thread, not its lock
        parked.set()
        go.wait(30)

    with fake_pool(workers=1, spares=0, engine_options={"delay": 0.3}) as pool:
        first = pool.submit(warm)
        first.add_done_callback(park)
        assert parked.wait(30)  # the supervisor thread sits in the callback; worker idle
        future = pool.submit(doc)  # sent to the idle worker from submit, under the lock
        time.sleep(0.5)  # it acknowledges and answers Pages; nobody reads them yet
        assert pool.cancel(future, kill=True)
        go.set()
        with pytest.raises(JobCancelled):
            result = future.result(timeout=60)
            print("document ran anyway:", len(result.pages), "pages")
        stats = pool.stats()
    assert stats.submitted == 2 and stats.completed == 1 and stats.failed == 1


def test_a_relative_path_is_the_callers_as_submitted_not_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path names a file in the caller's folder when it submits (as the
    caller-side count made it): not in whichever folder its worker started in."""
    before, after = tmp_path / "before", tmp_path / "after"
    make_document(before / "doc.tif", 5)
    make_document(after / "doc.tif", 8)
    monkeypatch.chdir(before)
    with fake_pool(workers=1, spares=0) as pool:
        monkeypatch.chdir(after)
        result = pool.submit("doc.tif").result(timeout=60)
    assert len(result.pages) == 8 and result.input == "doc.tif"
