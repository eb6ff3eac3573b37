"""Batch OCR of large image collections: ``ocrpool run`` as a library.

``run_batch`` walks the inputs (``scan``), refuses what no engine should see
(``admission``), skips what the output already holds (``ledger``), OCRs the rest on an
``OcrPool`` and writes one record per input (``records``) to JSON Lines, SQLite or text
files (``sinks``), showing ``progress`` and returning a ``summary``.
"""

from ocrpool.batch.errors import (
    BatchError,
    InputNotFound,
    OutputFailed,
    OutputLocked,
    OutputNameRefused,
    OutputNotAFile,
    OutputRefused,
)
from ocrpool.batch.interrupts import Interrupted, StopSignals
from ocrpool.batch.progress import make_progress
from ocrpool.batch.records import InputFile, Record
from ocrpool.batch.runner import BatchOptions, run_batch
from ocrpool.batch.sinks import OutputFormat
from ocrpool.batch.summary import Outcome, Summary
from ocrpool.formats import DEFAULT_MAX_PIXELS

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "BatchError",
    "BatchOptions",
    "InputFile",
    "InputNotFound",
    "Interrupted",
    "Outcome",
    "OutputFailed",
    "OutputFormat",
    "OutputLocked",
    "OutputNameRefused",
    "OutputNotAFile",
    "OutputRefused",
    "Record",
    "StopSignals",
    "Summary",
    "make_progress",
    "run_batch",
]
