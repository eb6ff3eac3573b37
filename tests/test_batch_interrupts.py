"""A stop signal never lands in the middle of a record (``ocrpool.batch.interrupts``)."""

from __future__ import annotations

import os
import signal

import pytest

from ocrpool.batch.interrupts import Interrupted, StopSignals


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
