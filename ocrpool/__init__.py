"""ocrpool: a process-isolated, recycling worker pool for leak-proof OCR.

Importing this package never imports an OCR engine: engines load only inside workers.
"""

from ocrpool.errors import (
    EngineError,
    EngineStartError,
    InvalidInput,
    JobTimeout,
    MemoryLimitExceeded,
    OcrPoolError,
    PoolClosed,
    ResourceUnavailable,
    WorkerCrashed,
)
from ocrpool.results import Attempt, Line, OcrResult, Page, Recognition

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "EngineError",
    "EngineStartError",
    "InvalidInput",
    "JobTimeout",
    "Line",
    "MemoryLimitExceeded",
    "OcrPoolError",
    "OcrResult",
    "Page",
    "PoolClosed",
    "Recognition",
    "ResourceUnavailable",
    "WorkerCrashed",
    "__version__",
]
