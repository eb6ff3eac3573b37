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
    from ocrpool.engines.base import JobOptions as JobOptions, PageSpan as PageSpan
    from ocrpool.errors import (
        DocumentTooLong as DocumentTooLong,
        EmptyPages as EmptyPages,
        EngineConfigError as EngineConfigError,
        EngineError as EngineError,
        EngineOptionError as EngineOptionError,
        EngineStartError as EngineStartError,
        ExportFailed as ExportFailed,
        ImageTooLarge as ImageTooLarge,
        InvalidInput as InvalidInput,
        JobCancelled as JobCancelled,
        JobTimeout as JobTimeout,
        LicenseRejected as LicenseRejected,
        MemoryLimitExceeded as MemoryLimitExceeded,
        OcrPoolError as OcrPoolError,
        OutOfResources as OutOfResources,
        PagesFailed as PagesFailed,
        PoolClosed as PoolClosed,
        ResourceUnavailable as ResourceUnavailable,
        WorkerCrashed as WorkerCrashed,
    )
    from ocrpool.exports import Export as Export, ExportFormat as ExportFormat
    from ocrpool.pool.config import PoolConfig as PoolConfig
    from ocrpool.pool.executor import OcrPool as OcrPool
    from ocrpool.results import (
        Attempt as Attempt,
        Line as Line,
        OcrResult as OcrResult,
        Page as Page,
        Recognition as Recognition,
    )
    from ocrpool.stats import (
        ExitCause as ExitCause,
        PageProgress as PageProgress,
        PoolState as PoolState,
        PoolStats as PoolStats,
        WorkerExit as WorkerExit,
        WorkerInfo as WorkerInfo,
        WorkerState as WorkerState,
    )

__version__ = "0.1.0"
"""The one place the version is written: the package metadata (pyproject's dynamic version)
and ``ocrpool --version`` read it from here."""

_HOMES = {
    "ocrpool.errors": (
        "DocumentTooLong",
        "EmptyPages",
        "EngineConfigError",
        "EngineError",
        "EngineOptionError",
        "EngineStartError",
        "ExportFailed",
        "ImageTooLarge",
        "InvalidInput",
        "JobCancelled",
        "JobTimeout",
        "LicenseRejected",
        "MemoryLimitExceeded",
        "OcrPoolError",
        "OutOfResources",
        "PagesFailed",
        "PoolClosed",
        "ResourceUnavailable",
        "WorkerCrashed",
    ),
    "ocrpool.engines.base": ("JobOptions", "PageSpan"),
    "ocrpool.exports": ("Export", "ExportFormat"),
    "ocrpool.pool.config": ("PoolConfig",),
    "ocrpool.pool.executor": ("OcrPool",),
    "ocrpool.results": ("Attempt", "Line", "OcrResult", "Page", "Recognition"),
    "ocrpool.stats": (
        "ExitCause",
        "PageProgress",
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
