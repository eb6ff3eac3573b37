"""``ocrpool serve``: one OCR service in front of one ``OcrPool``, shared by many programs.

::

    clients --HTTP--> uvicorn/Starlette (event loop thread owns all service state)
                        token check -> queue slot (429) -> body, bounded (413) -> admission (422)
                        -> pool.submit() -> job table (id, state, reply; TTL, count, bytes)
                        <- wrapped future settles -> reply (record or error status) -> client
                      the pool's supervisor thread and workers, as everywhere else

Needs the ``serve`` extra (``pip install 'ocrpool[serve]'``): importing ``ocrpool`` never
imports this package.
"""

from ocrpool.service.app import Service
from ocrpool.service.server import serve
from ocrpool.service.settings import ServiceSettings

__all__ = ["Service", "ServiceSettings", "serve"]
