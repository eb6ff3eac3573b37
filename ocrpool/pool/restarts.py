"""Restart intensity: how a pool whose workers keep dying stops spinning the machine.

As in Erlang/OTP's supervisors, more than ``max_restarts`` unplanned worker exits within
``restart_window`` seconds end the pool (``CrashLoop``); here they must also come in a
row, with no job finished in between, so poison inputs among good ones only ever cost
their own jobs. Each exit of a streak after the first delays the next worker start a
little more (0.25 s, doubling, at most 2 s), and that delay shows in ``stats()``.
"""

from __future__ import annotations

from collections import Counter, deque

from ocrpool.errors import CrashLoop
from ocrpool.stats import ExitCause

UNPLANNED = frozenset({ExitCause.CRASH, ExitCause.KILLED, ExitCause.HARD_RSS, ExitCause.TIMEOUT})
"""Exits that count: start failures have their own limit (``max_start_failures``)."""
_FIRST_DELAY_S = 0.25
_MAX_DELAY_S = 2.0


class RestartIntensity:
    def __init__(self, max_restarts: int, window_s: float) -> None:
        self._max_restarts = max_restarts
        self._window_s = window_s
        self._exits: deque[tuple[float, ExitCause]] = deque()

    @property
    def streak(self) -> int:
        """Unplanned exits since a job last finished (within the window)."""
        return len(self._exits)

    def job_finished(self) -> None:
        """A worker lived through a job: whatever killed the others was the inputs."""
        self._exits.clear()

    def worker_died(self, now: float, cause: ExitCause, stderr_tail: str) -> CrashLoop | None:
        """Count an unplanned exit; the error that ends the pool once there are too many."""
        self._exits.append((now, cause))
        while self._exits and now - self._exits[0][0] > self._window_s:
            self._exits.popleft()
        if len(self._exits) <= self._max_restarts:
            return None
        causes = Counter(c.value for _, c in self._exits)
        return CrashLoop(
            f"{len(self._exits)} workers died in a row within {self._window_s:g}s with no job "
            f"finished ({', '.join(f'{n} {c}' for c, n in causes.most_common())}); the pool "
            "stopped restarting them",
            restarts=len(self._exits),
            window_s=self._window_s,
            causes=dict(causes),
            stderr_tail=stderr_tail,
        )

    def delay(self) -> float:
        """How long the next worker start waits: nothing for a first death."""
        if self.streak < 2:
            return 0.0
        return min(_MAX_DELAY_S, _FIRST_DELAY_S * 2.0 ** (self.streak - 2))
