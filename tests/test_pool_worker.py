"""The worker's side of the protocol, run in this process over a real pipe."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import psutil
import pytest
from fakes import make_inputs

from ocrpool.engines.fake import FakeEngine
from ocrpool.pool.protocol import Job, Outcome, Stop
from ocrpool.pool.worker import OwnRss, _serve


def test_a_job_waiting_in_the_pipe_is_acknowledged_in_the_outcome_before_it(
    tmp_path: Path,
) -> None:
    first, second, third = make_inputs(tmp_path, ["a.png", "b.png", "c.png"])
    supervisor, worker = multiprocessing.Pipe()
    for job_id, path in enumerate((first, second), start=1):
        supervisor.send(Job(job_id, path))
    engine = FakeEngine()
    engine.start()
    sent: list[object] = []

    def serve_until_idle() -> None:
        supervisor.send(Stop())
        _serve(worker, engine, OwnRss(), None)
        while supervisor.poll():
            sent.append(supervisor.recv())

    serve_until_idle()
    supervisor.send(Job(3, third))  # sent to an idle worker: a separate Ack
    serve_until_idle()
    kinds = [
        (type(m).__name__, getattr(m, "job_id", None), getattr(m, "started", None)) for m in sent
    ]
    assert kinds == [
        ("Ack", 1, None),
        ("Outcome", 1, 2),  # job 2 waited: acknowledged here, no Ack of its own
        ("Outcome", 2, None),  # a Stop waited, not a job
        ("Ack", 3, None),
        ("Outcome", 3, None),
    ]
    texts = [m.recognition.text for m in sent if isinstance(m, Outcome) and m.recognition]
    assert texts == ["a", "b", "c"]


def test_own_rss_follows_this_process_as_psutil_reads_it() -> None:
    own, process = OwnRss(), psutil.Process()
    before = own.mb()
    grown = bytearray(64 * 1024 * 1024)  # 64 MB, touched
    for offset in range(0, len(grown), 4096):
        grown[offset] = 1
    after = own.mb()
    assert abs(after - process.memory_info().rss / 2**20) < 8
    assert after - before > 56
    del grown


def test_own_rss_without_proc_reads_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_proc(path: str, flags: int) -> int:
        raise FileNotFoundError(path)

    monkeypatch.setattr(os, "open", no_proc)
    own = OwnRss()
    monkeypatch.undo()
    assert abs(own.mb() - psutil.Process().memory_info().rss / 2**20) < 8
