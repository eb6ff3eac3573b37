"""ocrpool: a process-isolated, recycling worker pool for leak-proof OCR.

Importing this package never imports an OCR engine: engines load only inside workers.
"""

from ocrpool.errors import (
    EmptyPages,
    EngineError,
    EngineStartError,
    ExportFailed,
    InvalidInput,
    JobTimeout,
    MemoryLimitExceeded,
    OcrPoolError,
    PoolClosed,
    ResourceUnavailable,
    WorkerCrashed,
)
from ocrpool.exports import Export, ExportFormat
from ocrpool.pool import OcrPool
from ocrpool.results import Attempt, Line, OcrResult, Page, Recognition
from ocrpool.stats import ExitCause, PoolState, PoolStats, WorkerExit, WorkerInfo, WorkerState

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "EmptyPages",
    "EngineError",
    "EngineStartError",
    "ExitCause",
    "Export",
    "ExportFailed",
    "ExportFormat",
    "InvalidInput",
    "JobTimeout",
    "Line",
    "MemoryLimitExceeded",
    "OcrPool",
    "OcrPoolError",
    "OcrResult",
    "Page",
    "PoolClosed",
    "PoolState",
    "PoolStats",
    "Recognition",
    "ResourceUnavailable",
    "WorkerCrashed",
    "WorkerExit",
    "WorkerInfo",
    "WorkerState",
    "__version__",
]
