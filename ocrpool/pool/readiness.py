"""What the supervisor thread sleeps on: worker pipes, process sentinels, a wake-up pipe.

One epoll selector lives as long as the pool, and workers are added and removed as
they come and go: building a selector per wait, as ``multiprocessing.connection.wait``
and ``Connection.poll`` do, cost more than the rest of a no-op job together.
"""

from __future__ import annotations

import contextlib
import os
import selectors

from ocrpool.pool.handle import WorkerHandle


class Readiness:
    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._wake_pending = False
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)

    def wake(self) -> None:
        """Interrupt ``wait``; the caller holds the supervisor's lock (as ``wait``'s
        caller does while handling what it returned), which keeps the flag exact."""
        if self._wake_pending or self._wake_w < 0:
            return
        self._wake_pending = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    def watch(self, worker: WorkerHandle) -> None:
        self._selector.register(worker.conn.fileno(), selectors.EVENT_READ, (worker, False))
        self._selector.register(worker.sentinel, selectors.EVENT_READ, (worker, True))

    def forget_pipe(self, worker: WorkerHandle) -> None:
        """Stop watching a pipe at EOF (it would read as ready forever)."""
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(worker.conn.fileno())

    def forget(self, worker: WorkerHandle) -> None:
        """Stop watching an exited worker, before its descriptors are closed."""
        self.forget_pipe(worker)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.sentinel)

    def wait(self, timeout: float | None) -> tuple[list[WorkerHandle], list[WorkerHandle]]:
        """Block until something happens: workers with a message, workers that exited."""
        talking: list[WorkerHandle] = []
        exited: list[WorkerHandle] = []
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                continue
            worker, is_sentinel = key.data
            (exited if is_sentinel else talking).append(worker)
        return talking, exited

    def drain_wakes(self) -> bool:
        """Consume pending wake-ups (call with the lock held); whether there were any."""
        if not self._wake_pending:
            return False
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        self._wake_pending = False
        return True

    def close(self) -> None:
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._wake_w = -1
