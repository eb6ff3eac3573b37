"""The worker's side of the protocol, run in this process over a real pipe."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from fakes import make_document, make_inputs

from ocrpool.engines.fake import FakeEngine
from ocrpool.formats import file_id
from ocrpool.pool import worker as worker_module
from ocrpool.pool.limits import NO_LIMITS
from ocrpool.pool.protocol import Job, Outcome, Pages, Stop
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
        _serve(worker, engine, OwnRss(), None, NO_LIMITS)
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


def test_a_job_that_may_split_is_counted_first_and_answered_with_its_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = make_document(tmp_path / "doc.tif", 6)
    [image] = make_inputs(tmp_path, ["scan.png"])
    supervisor, worker = multiprocessing.Pipe()
    engine = FakeEngine()
    engine.start()

    def served(*jobs: Job) -> list[Outcome]:
        for job in jobs:
            supervisor.send(job)
        supervisor.send(Stop())
        _serve(worker, engine, OwnRss(), None, NO_LIMITS)
        sent = []
        while supervisor.poll():
            sent.append(supervisor.recv())
        return [message for message in sent if isinstance(message, Outcome)]

    counted, image_read, short_read = served(
        Job(1, os.path.relpath(document), split_from=4),
        Job(2, image, split_from=4),
        Job(3, document, split_from=7),  # 6 pages: too few to split, read whole
    )
    stat = os.stat(document)
    assert counted.pages == Pages(document, 6, file_id(stat))  # one machine: its FileId
    assert counted.recognition is None and counted.error is None
    assert image_read.pages is None and image_read.recognition is not None
    assert short_read.pages is None and short_read.recognition is not None
    assert len(short_read.recognition.pages) == 6

    def unreadable(path: str, **reads: bool) -> object:
        raise RecursionError("a page tree nested too deep")

    monkeypatch.setattr(worker_module, "file_layout", unreadable)
    (whole,) = served(Job(4, document, split_from=4))  # the engine reads it, as it can
    assert whole.pages is None and whole.recognition is not None


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


_NICED_POOL = """
import json, os, sys, time
from ocrpool import OcrPool

def nices(pid):
    found = []
    for thread in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{thread}/stat") as stat:
            found.append(int(stat.read().rsplit(")", 1)[1].split()[16]))
    return sorted(found)

if __name__ == "__main__":
    settings = dict(workers=1, spares=0, engine_options={"start_delay": 2.0}, wait_ready=False)
    with OcrPool(engine="fake", **settings) as pool:
        deadline = time.monotonic() + 30
        while not (workers := pool.stats().workers) or workers[0].pid is None:
            time.sleep(0.05)
        while len(warming := nices(workers[0].pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the warm-up thread starts
        pool.wait_ready()
        text = pool.recognize(sys.argv[1]).text
    print(json.dumps({"own": os.nice(0), "warming": warming, "text": text}))
"""


def test_a_worker_started_niced_warms_below_its_jobs_and_starts_unprivileged(
    tmp_path: Path,
) -> None:
    """``nice -n 15 ocrpool run`` (or a Ray actor, which Ray runs at nice 15): the warm-up
    thread's nice value was set to ``warm_nice`` (10) itself, a raise of priority that an
    unprivileged process may not make, so every start failed; and for root, a warm-up
    that outranked the worker's jobs. It is now added to the worker's own (19 at most)."""
    (image,) = make_inputs(tmp_path, ["niced.png"])
    script = tmp_path / "niced.py"
    script.write_text(_NICED_POOL)
    command = ["nice", "-n", "15", sys.executable, str(script), image]
    if os.geteuid() == 0 and shutil.which("setpriv"):  # as a user without CAP_SYS_NICE
        command = ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice", *command]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["text"] == "niced" and report["own"] == 15
    assert report["warming"] == [15, 19]  # the worker's main thread, its warm-up thread
