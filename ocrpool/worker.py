"""The worker process: owns one engine and serves one job at a time.

It never decides to exit on its own: the supervisor reads every result before it
sends ``Stop``, so a recycle cannot lose or duplicate a result. The worker dies with
its supervisor (parent-death signal, and EOF on its pipe), ignores Ctrl-C (the
supervisor decides what a Ctrl-C means), and dumps its Python stack to its stderr
file on a fatal signal or on SIGTERM, which is how a timed-out job's stack is caught.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import IO

import psutil

from ocrpool.engines import create_engine
from ocrpool.engines.base import Engine
from ocrpool.errors import EngineError, OcrPoolError
from ocrpool.protocol import Ack, Job, Outcome, Ready, StartFailed, Stop, WorkerSpec

_PR_SET_PDEATHSIG = 1
_MB = 1024 * 1024


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a spawned worker."""
    log = _redirect_stdio(spec.stderr_path)
    _die_with_parent(spec.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable(file=log, all_threads=True)
    faulthandler.register(signal.SIGTERM, file=log, all_threads=True, chain=True)
    process = psutil.Process()

    started = time.monotonic()
    try:
        engine = create_engine(spec.engine, spec.engine_options)
        engine.start()
    except BaseException as exc:
        conn.send(
            StartFailed(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        )
        sys.exit(1)
    conn.send(Ready(os.getpid(), _rss_mb(process), time.monotonic() - started))

    _serve(conn, engine, process)
    engine.close()


def _serve(conn: Connection, engine: Engine, process: psutil.Process) -> None:
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if isinstance(message, Stop):
            return
        assert isinstance(message, Job)
        conn.send(Ack(message.job_id))
        started = time.monotonic()
        recognition, error = None, None
        try:
            recognition = engine.recognize(message.source)
        except OcrPoolError as exc:
            error = exc
        except Exception as exc:
            error = EngineError(f"{type(exc).__name__}: {exc}")
        conn.send(
            Outcome(
                message.job_id, recognition, error, _rss_mb(process), time.monotonic() - started
            )
        )


def _rss_mb(process: psutil.Process) -> float:
    """Current resident memory; not ``ru_maxrss``, which a spawned child may inherit."""
    rss: int = process.memory_info().rss
    return rss / _MB


def _redirect_stdio(path: str) -> IO[str]:
    """Send fds 1 and 2 (Python's and native code's) to the worker's log file."""
    log = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    for fd in (1, 2):
        os.dup2(log.fileno(), fd)
    return log


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL us when the supervisor dies; exit if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)
