"""Output formats behind one interface: every sink can read back what it holds, which is
all the ledger (resume) needs, so the three formats share one resume mechanism."""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterator
from typing import Any, Protocol

from ocrpool.batch.errors import OutputRefused
from ocrpool.batch.jsonl import JsonlSink, JsonlStdout
from ocrpool.batch.ledger import Entry
from ocrpool.batch.records import Record
from ocrpool.batch.sqlitedb import SIDECARS, SqliteSink
from ocrpool.batch.txt import TxtSink


class OutputFormat(str, enum.Enum):
    JSONL = "jsonl"
    SQLITE = "sqlite"
    TXT = "txt"


class Sink(Protocol):
    def replay(self) -> Iterator[Entry]:
        """What the output already holds, oldest first (a later entry for a path wins)."""

    def write(self, record: Record) -> None:
        """Store ``record`` whole, durably enough to survive the process being killed."""

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """Finish; ``summary`` is ``None`` when the run did not get to one."""

    def close_failed(self) -> None:
        """Finish a run that ended in an error: ``close(None)``, except that an output this
        run created and never tried to write a record to is removed (a run refused before
        its first record, such as an engine option the engine refuses, leaves nothing
        behind; one whose first write failed keeps its empty output)."""


STDOUT = "-"
"""``--out -``: JSON Lines to standard output."""


def open_sink(
    fmt: OutputFormat, out: str, *, detail: bool = False, options: dict[str, Any] | None = None
) -> Sink:
    if fmt is OutputFormat.SQLITE:
        return SqliteSink(out, detail=detail, options=options or {})
    if fmt is OutputFormat.TXT:
        return TxtSink(out, detail=detail)
    if out == STDOUT:
        if sys.stdout is None:  # started with it closed: descriptor 1 may be another file's
            raise OutputRefused("cannot write to standard output: it is closed")
        return JsonlStdout(detail=detail)
    return JsonlSink(out, detail=detail)


def sidecars(fmt: OutputFormat) -> tuple[str, ...]:
    """Suffixes of the files a format keeps next to ``--out`` (a scan passes over them)."""
    return SIDECARS if fmt is OutputFormat.SQLITE else ()


__all__ = ["STDOUT", "OutputFormat", "Sink", "open_sink", "sidecars"]
