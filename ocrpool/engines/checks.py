"""The report ``ocrpool doctor`` prints for any engine: one ``Check`` a line, and a
verdict that rests on one fact, that the engine really recognised text."""

from __future__ import annotations

import dataclasses
import enum

RECOGNITION = "recognition"
"""The check whose success is the verdict."""


class CheckStatus(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIPPED = "skip"
    INFO = "info"
    """Something optional is not there; nothing ocrpool does needs it."""


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of the report; ``remedy`` says what to do when it did not pass."""

    name: str
    status: CheckStatus
    detail: str
    remedy: str = ""
    stderr_tail: str = ""


@dataclasses.dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True only when the engine really recognised text."""
        return any(c.name == RECOGNITION and c.status is CheckStatus.OK for c in self.checks)
