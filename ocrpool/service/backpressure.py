"""Queue slots: the bound on jobs the service holds, from the first byte of upload to the end.

A request takes a slot before its body is read, so a full queue answers 429 at once and
uploads in progress count too: memory is bounded by ``limit`` bodies, never by clients,
and an upload holds its slot no longer than ``--body-timeout``.
A batch takes one slot per input. A refusal says when to try again from how fast slots
have been freed lately (the queue's drain rate): about the time one slot takes to free.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from ocrpool.service.errors import QueueFull

MIN_RETRY_AFTER_S = 1
MAX_RETRY_AFTER_S = 60
"""A 429's ``Retry-After`` bounds: no sooner than 1 s (a header counts whole seconds), no
later than a minute (also what it says before any job has finished to measure by)."""

DRAIN_WINDOW_S = 60.0
"""The drain rate counts the slots freed in the last minute."""


class Slots:
    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.used = 0
        self._clock = clock
        self._since = clock()
        self._freed: deque[float] = deque()
        """When each slot freed in the window was given back."""

    def take(self, count: int = 1) -> Slot:
        """``count`` slots as one, or ``QueueFull`` when fewer are free."""
        if self.used + count > self.limit:
            retry_after = self.retry_after_s()
            wanted = "" if count == 1 else f" and this request's {count} inputs need {count}"
            raise QueueFull(
                f"the queue is full: {self.used} of its {self.limit} slots are taken by jobs "
                f"accepted and unfinished (--max-queue){wanted}; retry after {retry_after} s",
                retry_after_s=retry_after,
            )
        self.used += count
        return Slot(self, count)

    def drain_rate(self) -> float:
        """Slots freed per second over the last ``DRAIN_WINDOW_S`` (or since the start)."""
        self._forget_old()
        elapsed = min(DRAIN_WINDOW_S, self._clock() - self._since)
        return len(self._freed) / elapsed if elapsed > 0 else 0.0

    def retry_after_s(self) -> int:
        """Whole seconds until a slot is likely free, from the drain rate."""
        rate = self.drain_rate()
        if rate == 0:
            return MAX_RETRY_AFTER_S
        return min(MAX_RETRY_AFTER_S, max(MIN_RETRY_AFTER_S, math.ceil(1 / rate)))

    def _give_back(self, count: int) -> None:
        self.used -= count
        self._freed.extend([self._clock()] * count)
        self._forget_old()

    def _forget_old(self) -> None:
        horizon = self._clock() - DRAIN_WINDOW_S
        while self._freed and self._freed[0] < horizon:
            self._freed.popleft()


class Slot:
    def __init__(self, slots: Slots, count: int) -> None:
        self._slots: Slots | None = slots
        self._count = count

    def grow(self, count: int) -> None:
        """Hold ``count`` more slots (a batch's other inputs), or ``QueueFull``."""
        assert self._slots is not None
        self._slots.take(count)
        self._count += count

    def release(self) -> None:
        """Give the slots back; later calls do nothing."""
        if self._slots is not None:
            self._slots._give_back(self._count)
            self._slots = None
