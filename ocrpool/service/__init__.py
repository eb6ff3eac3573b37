"""``ocrpool serve``: one OCR service in front of one ``OcrPool``, shared by many programs.

::

    clients --HTTP--> uvicorn/Starlette (event loop thread owns all service state)
                        token check -> queue slot (429) -> body, bounded (413) -> admission (422)
                        -> pool.submit() -> job table (id, state, reply; TTL, count, bytes)
                        <- wrapped future settles -> reply (record or error status) -> client
                      the pool's supervisor thread and workers, as everywhere else

Needs the ``serve`` extra (``pip install 'ocrpool[serve]'``): importing ``ocrpool`` never
imports this package, and its names load on first use, so the error table
(``ocrpool.error_codes``) reads ``ocrpool.service.errors`` without a web framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocrpool.service.app import Service as Service
    from ocrpool.service.server import serve as serve
    from ocrpool.service.settings import ServiceSettings as ServiceSettings

_MODULE_OF = {
    "Service": "ocrpool.service.app",
    "ServiceSettings": "ocrpool.service.settings",
    "serve": "ocrpool.service.server",
}

__all__ = ["Service", "ServiceSettings", "serve"]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'ocrpool.service' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
