"""The Ray actor: one local ``OcrPool`` on a node, answering one call per input.

Recycling, warm spares, timeouts, crash retries and quarantine are the local pool's, as on
one machine. A failure of one input comes back as data (an ``OcrResult`` with ``ok``
false), never as an exception, so Ray never retries a poison input: only a lost actor
makes the driver dispatch an input again. The actor process never imports an engine (its
pool's workers do), and this module does not import Ray: the driver wraps the class with
``ray.remote`` when it creates the actors.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

from ocrpool.engines.base import JobOptions, Source
from ocrpool.errors import OcrPoolError
from ocrpool.pool.executor import OcrPool
from ocrpool.results import OcrResult
from ocrpool.scaleout.stats import Snapshot


@dataclass(frozen=True)
class Hello:
    """The actor's first answer: its pid, its Ray node's id, and the error if its pool
    could not start."""

    pid: int
    node: str
    error: OcrPoolError | None


@dataclass(frozen=True)
class Reply:
    """One input's result, with the pool's stats right after it (the driver's only view of
    the actor's workers, so it never has to poll them) and where the actor runs (a new pid
    is a new incarnation: Ray restarted the actor)."""

    result: OcrResult
    snapshot: Snapshot
    pid: int
    node: str


class PoolActor:
    """Hosts one ``OcrPool`` built from ``settings`` (``OcrPool``'s keyword arguments)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        import ray  # loaded already: this process is a Ray worker

        self._node: str = ray.get_runtime_context().get_node_id()
        _spawn_without_main_script()
        self._pool: OcrPool | None = None
        self._error: OcrPoolError | None = None
        self._snapshots = itertools.count(1)
        self._snapshot_lock = threading.Lock()  # calls run in threads of their own
        try:
            self._pool = OcrPool(**settings)
        except OcrPoolError as error:  # EngineStartError: reported by ``hello``, not raised,
            self._error = error  # so Ray does not restart an actor that can never start

    def hello(self) -> Hello:
        return Hello(os.getpid(), self._node, self._error)

    def recognize(self, source: Source, label: str, options: JobOptions | None = None) -> Reply:
        pool = self._running()
        result = pool.submit_result(source, label=label, options=options).result()
        return Reply(result, self._snapshot(pool), os.getpid(), self._node)

    def close(self, cancel_pending: bool) -> Snapshot:
        """Stop the pool (finishing or cancelling what it holds); its final stats."""
        pool = self._running()
        pool.shutdown(cancel_pending=cancel_pending)
        return self._snapshot(pool)

    def _snapshot(self, pool: OcrPool) -> Snapshot:
        """The pool's stats, numbered in the order they were taken."""
        with self._snapshot_lock:
            return Snapshot(next(self._snapshots), pool.stats())

    def _running(self) -> OcrPool:
        if self._pool is None:  # the driver never calls a pool that did not start
            raise RuntimeError("this actor's pool did not start")
        return self._pool


def _spawn_without_main_script() -> None:
    """The pool spawns its workers, and spawning re-runs the parent's main script in each
    child. An actor's main script is Ray's worker entry point, which imports all of Ray:
    about 45 MB and a second more per OCR worker, for nothing, as ocrpool's workers need
    nothing from ``__main__``. Without a ``__file__``, multiprocessing skips it."""
    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is None and hasattr(main, "__file__"):
        del main.__file__
