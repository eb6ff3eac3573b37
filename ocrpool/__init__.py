"""ocrpool: a process-isolated, recycling worker pool for leak-proof OCR.

Importing this package imports neither an OCR engine nor the pool: names load on first
use, so a worker process loads only what it runs. The library logs to the ``ocrpool``
logger and never prints; configure logging to see its messages.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocrpool.errors import (
        CrashLoop as CrashLoop,
    )
    from ocrpool.errors import (
        EmptyPages as EmptyPages,
    )
    from ocrpool.errors import (
        EngineError as EngineError,
    )
    from ocrpool.errors import (
        EngineStartError as EngineStartError,
    )
    from ocrpool.errors import (
        ExportFailed as ExportFailed,
    )
    from ocrpool.errors import (
        ImageTooLarge as ImageTooLarge,
    )
    from ocrpool.errors import (
        InvalidInput as InvalidInput,
    )
    from ocrpool.errors import (
        JobCancelled as JobCancelled,
    )
    from ocrpool.errors import (
        JobTimeout as JobTimeout,
    )
    from ocrpool.errors import (
        LicenseRejected as LicenseRejected,
    )
    from ocrpool.errors import (
        MemoryLimitExceeded as MemoryLimitExceeded,
    )
    from ocrpool.errors import (
        OcrPoolError as OcrPoolError,
    )
    from ocrpool.errors import (
        PoolClosed as PoolClosed,
    )
    from ocrpool.errors import (
        ResourceUnavailable as ResourceUnavailable,
    )
    from ocrpool.errors import (
        WorkerCrashed as WorkerCrashed,
    )
    from ocrpool.exports import Export as Export
    from ocrpool.exports import ExportFormat as ExportFormat
    from ocrpool.pool.config import PoolConfig as PoolConfig
    from ocrpool.pool.executor import OcrPool as OcrPool
    from ocrpool.results import (
        Attempt as Attempt,
    )
    from ocrpool.results import (
        Line as Line,
    )
    from ocrpool.results import (
        OcrResult as OcrResult,
    )
    from ocrpool.results import (
        Page as Page,
    )
    from ocrpool.results import (
        Recognition as Recognition,
    )
    from ocrpool.stats import (
        ExitCause as ExitCause,
    )
    from ocrpool.stats import (
        PoolState as PoolState,
    )
    from ocrpool.stats import (
        PoolStats as PoolStats,
    )
    from ocrpool.stats import (
        WorkerExit as WorkerExit,
    )
    from ocrpool.stats import (
        WorkerInfo as WorkerInfo,
    )
    from ocrpool.stats import (
        WorkerState as WorkerState,
    )

__version__ = "0.1.0"

_HOMES = {
    "ocrpool.errors": (
        "CrashLoop",
        "EmptyPages",
        "EngineError",
        "EngineStartError",
        "ExportFailed",
        "ImageTooLarge",
        "InvalidInput",
        "JobCancelled",
        "JobTimeout",
        "LicenseRejected",
        "MemoryLimitExceeded",
        "OcrPoolError",
        "PoolClosed",
        "ResourceUnavailable",
        "WorkerCrashed",
    ),
    "ocrpool.exports": ("Export", "ExportFormat"),
    "ocrpool.pool.config": ("PoolConfig",),
    "ocrpool.pool.executor": ("OcrPool",),
    "ocrpool.results": ("Attempt", "Line", "OcrResult", "Page", "Recognition"),
    "ocrpool.stats": (
        "ExitCause",
        "PoolState",
        "PoolStats",
        "WorkerExit",
        "WorkerInfo",
        "WorkerState",
    ),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [*sorted(_MODULE_OF), "__version__"]

logging.getLogger("ocrpool").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'ocrpool' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
