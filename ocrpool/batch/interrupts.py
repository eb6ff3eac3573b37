"""Ctrl-C and SIGTERM stop a run cleanly, never in the middle of writing a record."""

from __future__ import annotations

import contextlib
import signal
import types
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_LOCKING_MODULES = (
    "threading",
    "concurrent.futures",
    "queue",
    "logging",
    "multiprocessing",
    "ocrpool.pool",
    "ocrpool.scaleout",
)
"""Modules whose Python code takes and releases locks the pool's threads share (a future's
condition, an event's, a handler's, the supervisor's) or updates what they share (the
lease book): an exception raised in the middle of it, as from a signal handler, can
leave such a lock held (``_AcquireFutures.__enter__`` took some of its futures'
conditions; ``Condition.__enter__`` had acquired but not yet returned), and the
supervisor thread that next resolves that future waits on it for ever, while the stop
joins that thread."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; raised in the main thread like ``KeyboardInterrupt``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """While entered, SIGINT and SIGTERM raise ``Interrupted``, deferred to the end of any
    ``shielded()`` block so a record is written whole or not at all. Only the first signal
    counts: the stop that follows is not itself interrupted; and none counts after
    ``finish()``. One that lands in the code of ``threading``, ``concurrent.futures`` and
    the like (the main thread waiting for a result) is deferred too, to the next
    ``shielded()`` block's end (a run passes one at every record and, waiting, every
    ``WAITING_S``). A signal the process was started with ignored stays ignored, as the
    shell asked (``nohup``, or a background job of a script, which ignores SIGINT). Use
    from the main thread."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: int | None = None
        self._settled = False
        """A stop was raised, or the work is finished: later signals change nothing."""
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self._pending is not None:
            self._raise(self._pending)

    def finish(self) -> None:
        """The work is done (every record written and closed): a stop signal from now on
        is ignored, so it cannot turn a finished run into an interrupted or killed one."""
        self._settled = True

    def _handle(self, signum: int, frame: types.FrameType | None) -> None:
        if self._settled:
            return
        if self._depth or _in_locking_code(frame):
            self._pending = signum
        else:
            self._raise(signum)

    def _raise(self, signum: int) -> None:
        self._pending = None
        self._settled = True
        raise Interrupted(signum)


_INTERRUPTIBLE_MODULES = ("ocrpool.batch", "ocrpool.cli")
"""The run's own code, written for a stop at any point outside ``shielded()`` (a scan of
a huge or slow folder, which the pool pulls its inputs from, stops at once)."""


def _in_locking_code(frame: types.FrameType | None) -> bool:
    """Whether the innermost frame of the interrupted stack that belongs to
    ``_LOCKING_MODULES`` or ``_INTERRUPTIBLE_MODULES`` belongs to the first; frames of
    other modules (``os``, Pillow) take the kind of the code that called them."""
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if _of(name, _LOCKING_MODULES):
            return True
        if _of(name, _INTERRUPTIBLE_MODULES):
            return False
        frame = frame.f_back
    return False


def _of(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == module or name.startswith(module + ".") for module in modules)
