"""The supervisor's handle on one worker: nothing the worker wrote before dying is lost."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from fakes import make_inputs

from ocrpool.handle import WorkerHandle
from ocrpool.protocol import Ack, Job, Ready, WorkerSpec


def test_a_failed_send_does_not_hide_what_the_dead_worker_wrote(tmp_path: Path) -> None:
    (crash,) = make_inputs(tmp_path, ["crash.png"])
    spec = WorkerSpec("fake", {}, os.getpid(), str(tmp_path / "worker.log"))
    worker = WorkerHandle(multiprocessing.get_context("spawn"), spec, quota=None)
    assert isinstance(worker.conn.recv(), Ready)
    assert worker.send(Job(1, crash))
    assert worker.wait() is not None  # it acknowledged the job, then segfaulted
    assert not worker.send(Job(2, crash))  # the supervisor learns it is gone by writing
    assert worker.receive() == [Ack(1)]  # ... and must still read the acknowledgement
    worker.release()
