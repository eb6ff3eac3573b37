"""An input the fake engine blocks on while it runs: a FIFO.

The engine reads its input to the end; a FIFO's read waits for a writer, and our open
of the writer returns only once the engine has opened the FIFO. So that open is the
event "the job is acknowledged and running in the engine", with no polling, and the job
goes on only when the test lets it (``finish``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

from tests.support.served import wait_until

CONTENT = b"fake image"


class Fifo:
    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = str(path)
        self._writer: int | None = None

    def wait_running(self, timeout: float = 30.0) -> None:
        """Return once a worker's engine has opened the input (the job runs)."""
        opened: list[int] = []
        opener = threading.Thread(
            target=lambda: opened.append(os.open(self.path, os.O_WRONLY)), daemon=True
        )
        opener.start()
        opener.join(timeout)
        assert opened, f"no worker opened {self.path} within {timeout}s"
        self._writer = opened[0]

    def feed(self, until: Callable[[], bool], timeout: float = 30.0) -> None:
        """Give the input whole to each reader that opens it, until ``until()`` holds: a
        retry may open the FIFO before the killed reader's writer is closed (and read it
        then) or after (and wait for a writer)."""

        def fed() -> bool:
            try:
                writer = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: nobody reads it yet
                    raise
                return until()
            with contextlib.suppress(BrokenPipeError):
                os.write(writer, CONTENT)
            os.close(writer)
            return until()

        wait_until(fed, timeout, f"the job reading {self.path} to end")

    def finish(self) -> None:
        """Let the running job read its input and go on (its reader may be dead)."""
        assert self._writer is not None
        with contextlib.suppress(BrokenPipeError):
            os.write(self._writer, CONTENT)
        os.close(self._writer)
        self._writer = None
