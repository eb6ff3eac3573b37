"""The operation log: every operation's outcome, counted as Jepsen counts them.

An operation is one input given to the pool (or to ``ocrpool run``). It ends ``ok``,
``failed`` (a typed error that names its cause), or ``unknown`` (in flight when its client
died: only a later run can say what became of it). Completed twice is a duplicate; never
completed once its client is done is lost. The log is compact (a byte per operation), so
a soak of millions does not grow the process it measures.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ocrpool import (
    JobTimeout,
    MemoryLimitExceeded,
    OcrPoolError,
    OcrResult,
    WorkerCrashed,
)

from .faults import InputKind

_KINDS = tuple(InputKind)
_CRASH_SIGNALS = {InputKind.CRASH: "SIGSEGV", InputKind.ABORT: "SIGABRT"}
_MAX_VIOLATIONS = 50
_KILLED = "(killed by SIGKILL)"
"""How a ``WorkerCrashed`` attempt says an outside SIGKILL ended its worker."""


class Outcome(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


def explains(kind: InputKind, error: OcrPoolError, *, stops: bool) -> bool:
    """Whether ``error`` names a cause that an input of ``kind`` (or an injected fault)
    accounts for. An outside SIGKILL may end any job once its retries are spent; a
    timeout ends a hang, or (when workers are SIGSTOPped) any job."""
    if isinstance(error, MemoryLimitExceeded):
        return kind is InputKind.BALLOON
    if isinstance(error, WorkerCrashed):
        return error.signal in ("SIGKILL", _CRASH_SIGNALS.get(kind))
    if isinstance(error, JobTimeout):
        return kind is InputKind.HANG or stops
    return False


@dataclass
class OpLog:
    stops: bool = False
    """Workers are SIGSTOPped in this run: a timeout may end any job."""
    _kinds: bytearray = field(default_factory=bytearray)
    _ends: bytearray = field(default_factory=bytearray)
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    """Failed operations by error type."""
    by_kind: Counter[tuple[InputKind, str]] = field(default_factory=Counter)
    """Completions by the kind of input and how it ended: ``ok`` or the error's type."""
    attempts: Counter[int] = field(default_factory=Counter)
    """Operations by the number of attempts they took (a failed ``submit`` future raises
    its error, which carries no attempts: those are not counted here)."""
    completions: int = 0
    in_flight_at_kill: Counter[Outcome] = field(default_factory=Counter)
    """Operations that were running on a worker SIGKILLed from outside: their outcome was
    unknown at that moment; counted by how the pool resolved them."""
    violations: list[str] = field(default_factory=list)
    """Failures no injected fault explains (the first few)."""

    def invoke(self, kind: InputKind = InputKind.GOOD) -> int:
        """A new operation; its id."""
        self._kinds.append(_KINDS.index(kind))
        self._ends.append(0)
        return len(self._kinds) - 1

    def kind(self, op: int) -> InputKind:
        return _KINDS[self._kinds[op]]

    def complete(self, op: int, result: OcrResult) -> None:
        self._ends[op] = min(255, self._ends[op] + 1)
        self.completions += 1
        if result.attempts or result.ok:
            self.attempts[len(result.attempts)] += 1
        if any(_KILLED in attempt.message for attempt in result.attempts):
            self.in_flight_at_kill[Outcome.OK if result.ok else Outcome.FAILED] += 1
        ended = "ok" if result.ok else type(result.error).__name__
        self.by_kind[self.kind(op), ended] += 1
        if result.ok:
            self.outcomes[Outcome.OK] += 1
            if self.kind(op) is not InputKind.GOOD:
                self._violate(f"{result.input}: a {self.kind(op).value} input came back ok")
            return
        self.outcomes[Outcome.FAILED] += 1
        error = result.error
        assert error is not None
        self.errors[type(error).__name__] += 1
        if not explains(self.kind(op), error, stops=self.stops):
            self._violate(f"{result.input}: {type(error).__name__}: {error}")
        elif result.input not in error.message:
            self._violate(f"{result.input}: the error does not name its input: {error}")

    def unknown(self, count: int = 1) -> None:
        """Operations in flight when their client died (resolved by a later run)."""
        self.outcomes[Outcome.UNKNOWN] += count

    def _violate(self, message: str) -> None:
        if len(self.violations) < _MAX_VIOLATIONS:
            self.violations.append(message)

    @property
    def invoked(self) -> int:
        return len(self._ends)

    @property
    def lost(self) -> int:
        return self._ends.count(0)

    @property
    def duplicated(self) -> int:
        return len(self._ends) - self._ends.count(0) - self._ends.count(1)

    def summary(self) -> dict[str, Any]:
        return {
            "operations": self.invoked,
            "ok": self.outcomes[Outcome.OK],
            "failed": self.outcomes[Outcome.FAILED],
            "unknown": self.outcomes[Outcome.UNKNOWN],
            "lost": self.lost,
            "duplicated": self.duplicated,
            "failed_by_type": dict(self.errors),
            "attempts_histogram": {str(n): c for n, c in sorted(self.attempts.items())},
            "in_flight_at_an_outside_kill": {o.value: n for o, n in self.in_flight_at_kill.items()},
            "unexplained_failures": list(self.violations),
        }
