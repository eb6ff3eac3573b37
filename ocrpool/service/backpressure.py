"""Queue slots: the bound on jobs the service holds, from the first byte of upload to the end.

A request takes a slot before its body is read, so a full queue answers 429 at once and
uploads in progress count too: memory is bounded by ``limit`` bodies, never by clients.
"""

from __future__ import annotations

from ocrpool.service.errors import QueueFull

RETRY_AFTER_S = 1
"""What a 429 tells clients to wait: slots free as jobs finish, often sooner than that."""


class Slots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self) -> Slot:
        """A slot, or ``QueueFull`` when all ``limit`` are taken."""
        if self.used >= self.limit:
            raise QueueFull(
                f"the queue is full: {self.limit} jobs are accepted and unfinished (--max-queue)",
                retry_after_s=RETRY_AFTER_S,
            )
        self.used += 1
        return Slot(self)


class Slot:
    def __init__(self, slots: Slots) -> None:
        self._slots: Slots | None = slots

    def release(self) -> None:
        """Give the slot back; later calls do nothing."""
        if self._slots is not None:
            self._slots.used -= 1
            self._slots = None
