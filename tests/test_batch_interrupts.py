"""A stop signal never lands in the middle of a record (``ocrpool.batch.interrupts``)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import types
from concurrent.futures import Future, wait

import pytest

from ocrpool.batch.interrupts import Interrupted, StopSignals, _in_locking_code


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_outside_a_write_stops_at_once(signum: int) -> None:
    with StopSignals(), pytest.raises(Interrupted) as caught:
        os.kill(os.getpid(), signum)
        signal.pause()  # not reached: the handler raises on delivery
    assert caught.value.signum == signum


def test_a_signal_during_a_write_waits_for_its_end() -> None:
    written = []
    with StopSignals() as stop:
        with pytest.raises(Interrupted), stop.shielded():
            os.kill(os.getpid(), signal.SIGTERM)
            written.append("the rest of the record")
        assert written == ["the rest of the record"]


def test_only_the_first_signal_stops_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals():
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGINT)
            signal.pause()
        os.kill(os.getpid(), signal.SIGTERM)  # during the clean stop: ignored
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_ignored_when_the_run_began_stays_ignored() -> None:
    """A background job of a shell script starts with SIGINT ignored; ``nohup`` and
    supervisors may ignore SIGTERM: the run must not stop on what its starter ignored."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignals():
            os.kill(os.getpid(), signal.SIGINT)  # ignored: nothing is raised
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            with pytest.raises(Interrupted) as caught:  # SIGTERM was not ignored
                os.kill(os.getpid(), signal.SIGTERM)
                signal.pause()
        assert caught.value.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


class _SignallingLock:
    """A future's condition that sends SIGTERM to this process once it is taken: the
    signal lands inside ``concurrent.futures.wait`` with the lock held."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.fired = False

    def acquire(self, *args: object) -> bool:
        got = self.lock.acquire(*args)
        if not self.fired:
            self.fired = True
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs on this call's return
        return got

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _free_for_another_thread(lock: threading.RLock) -> bool:
    taken: list[bool] = []

    def take() -> None:
        taken.append(lock.acquire(timeout=1))
        if taken[0]:
            lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return taken[0]


def test_a_signal_inside_a_wait_for_futures_leaves_no_lock_held() -> None:
    """Raised inside ``wait``'s ``_AcquireFutures.__enter__``, the stop left a future's
    condition held by the main thread: the supervisor thread resolving that future then
    waited on it for ever, and the stop's shutdown joined that thread (a hung run)."""
    future: Future[int] = Future()
    condition = _SignallingLock()
    future._condition = condition  # type: ignore[attr-defined]
    with StopSignals() as stop, pytest.raises(Interrupted):
        wait([future], timeout=0.01)
        with stop.shielded():  # the next point where a stop lands: nothing half done
            pass
    assert condition.fired
    assert _free_for_another_thread(condition.lock)


def _stack_of(*modules: str) -> bool:
    """``_in_locking_code`` of a stack of calls through functions whose module is each of
    ``modules`` in turn, the last innermost."""
    return _descend(modules, 0)


def _descend(modules: tuple[str, ...], depth: int) -> bool:
    if depth == len(modules):
        return _in_locking_code(sys._getframe(0))
    inner = types.FunctionType(_descend.__code__, {**globals(), "__name__": modules[depth]})
    return bool(inner(modules, depth + 1))


def test_a_stop_is_deferred_by_the_innermost_code_that_can_say() -> None:
    """The run's own code takes a stop at once, even below the pool's frames (a slow scan
    the pool pulls its inputs from); the pool's and the standard library's locking code
    defer it, even below the run's (the wait for a result)."""
    assert _stack_of("ocrpool.pool.front", "ocrpool.batch.scan", "os") is False
    assert _stack_of("ocrpool.batch.runner", "ocrpool.pool.front", "os") is True
    assert _stack_of("ocrpool.batch.runner", "concurrent.futures._base") is True
    assert _stack_of("ocrpool.cli.run", "ocrpool.batch.runner", "PIL.Image") is False
    assert _stack_of("__main__", "json") is False
