"""Text output: a ``.txt`` per input under an output folder, mirroring the input's absolute
path (``/data/scans/a.png`` -> ``OUT/data/scans/a.png.txt``; pages separated by form feeds).

The records themselves go to ``OUT/ocrpool-records.jsonl``, which is what resume reads.
A text file is complete before its record is written: a record means its text is there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ocrpool.batch.errors import OutputRefused, write_error
from ocrpool.batch.jsonl import JsonlSink
from ocrpool.batch.ledger import Entry
from ocrpool.batch.outpath import make_parents, mirror_path
from ocrpool.batch.records import Record
from ocrpool.exports import write_atomically

RECORDS_NAME = "ocrpool-records.jsonl"


def text_path(folder: str, source: str) -> str:
    """Where the text of the input at ``source`` (absolute) goes."""
    return mirror_path(folder, source, ".txt")


class TxtSink:
    def __init__(self, folder: str, *, detail: bool = False) -> None:
        self.folder = folder
        self._created = not os.path.lexists(folder)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise OutputRefused(f"cannot create the folder {folder}: {exc.strerror}") from None
        self._records = JsonlSink(os.path.join(folder, RECORDS_NAME), detail=detail)

    def replay(self) -> Iterator[Entry]:
        return self._records.replay()

    def write(self, record: Record) -> None:
        if record.ok:
            target = text_path(self.folder, record.input.path)
            try:
                make_parents(self.folder, target)
                write_atomically(target, record.text.encode("utf-8", errors="surrogateescape"))
            except OSError as exc:
                raise write_error(target, exc) from None
        self._records.write(record)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        self._records.close(summary)

    def close_failed(self) -> None:
        self._records.close_failed()
        if self._created:
            with contextlib.suppress(OSError):  # not empty: a text was written
                os.rmdir(self.folder)
