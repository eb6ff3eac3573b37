"""A pool's own life cycle, shared by the local pool and the Ray backend::

    STARTING --> RUNNING --> CLOSING --> CLOSED
        |           |           |          ^
        |           +--------> STOPPING ---+
        +------ any of these --> BROKEN (it keeps its fault)

``BROKEN`` carries the error every refused call raises: the engine cannot start, every
actor is gone, or the pool's own thread failed. An illegal change raises.
"""

from __future__ import annotations

import copy
import os

from ocrpool.errors import OcrPoolError, PoolClosed
from ocrpool.stats import PoolState

_ALLOWED = {
    PoolState.STARTING: {PoolState.RUNNING, PoolState.CLOSING, PoolState.STOPPING},
    PoolState.RUNNING: {PoolState.CLOSING, PoolState.STOPPING},
    PoolState.CLOSING: {PoolState.STOPPING, PoolState.CLOSED},
    PoolState.STOPPING: {PoolState.CLOSED},
    PoolState.CLOSED: set(),
    PoolState.BROKEN: set(),
}
_BREAKABLE = frozenset(
    {PoolState.STARTING, PoolState.RUNNING, PoolState.CLOSING, PoolState.STOPPING}
)
BREAK_RECORD = "ocrpool_break"
"""Set on the log record of a local pool's break: a command that says the error itself
(``ocrpool run`` as it exits, ``ocrpool serve`` as its state) drops the record."""


class PoolLife:
    def __init__(self, state: PoolState = PoolState.STARTING) -> None:
        self.state = state
        self.fault: OcrPoolError | None = None
        """Why the pool is BROKEN."""
        self.pid = os.getpid()
        """The process the pool runs in: a forked child has a copy of this object, but not
        the pool's thread, workers or actors."""

    def forked_refusal(self) -> PoolClosed | None:
        """In a forked child (a server that preloads its app, then forks), the error its
        calls raise: there its jobs would wait for ever. Checked before any lock, which
        the fork may have copied held."""
        if os.getpid() == self.pid:
            return None
        return PoolClosed(f"this pool belongs to process {self.pid}; a forked child needs its own")

    def become(self, state: PoolState) -> None:
        if state not in _ALLOWED[self.state]:
            raise RuntimeError(f"pool: {self.state.value} -> {state.value}")
        self.state = state

    def breaks(self, fault: OcrPoolError) -> bool:
        """Become BROKEN with ``fault``; False if the pool had already ended."""
        if self.state not in _BREAKABLE:
            return False
        self.state, self.fault = PoolState.BROKEN, fault
        return True

    @property
    def accepting(self) -> bool:
        """New jobs are taken."""
        return self.state in (PoolState.STARTING, PoolState.RUNNING)

    @property
    def serving(self) -> bool:
        """Queued jobs will still be run."""
        return self.state in (PoolState.STARTING, PoolState.RUNNING, PoolState.CLOSING)

    def refusal(self) -> OcrPoolError:
        """The error a call the pool no longer takes raises: a copy of the fault (the
        stored one would grow a traceback per raise), else ``PoolClosed``."""
        if self.fault is not None:
            return copy.copy(self.fault)
        return PoolClosed(f"the pool is {self.state.value}")
