"""Restart back-off: workers that keep dying from outside slow the next start, never
stop it.

Such deaths in a row with no job finished between them (``streak``) delay the next
worker start a little more each (0.25 s, doubling, at most 2 s); the delay shows in
``stats()``. Nothing here ends the pool: whose fault each death was is ``blame.py``'s
verdict, and only failed engine starts break a pool.
"""

from __future__ import annotations

_FIRST_DELAY_S = 0.25
_MAX_DELAY_S = 2.0


class RestartBackoff:
    def __init__(self) -> None:
        self.streak = 0
        """Deaths from outside since a job last finished."""

    def job_finished(self) -> None:
        """A worker lived through a job: the machine is making progress again."""
        self.streak = 0

    def worker_died(self) -> float:
        """Count an unplanned death; how long the next start should wait."""
        self.streak += 1
        if self.streak < 2:
            return 0.0
        doublings = min(self.streak - 2, 64)  # past the cap long before; 2.0**1024 overflows
        return min(_MAX_DELAY_S, _FIRST_DELAY_S * 2.0**doublings)
