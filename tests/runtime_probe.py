"""An aspose engine that answers every job with the settings its worker runs with.

Pool workers load it by name (``engine="runtime_probe:RuntimeProbe"``): it starts like the
aspose engine, then reports what the process environment, which the .NET runtime read when
it started, holds, and the recognition settings it would pass Aspose.
"""

from __future__ import annotations

import ctypes
import json

from ocrpool.engines.aspose.engine import AsposeEngine
from ocrpool.engines.aspose.runtime import CONCURRENT_GC_VARIABLE, TIERED_COMPILATION_VARIABLE
from ocrpool.engines.base import Source
from ocrpool.results import Page, Recognition

VARIABLES = (TIERED_COMPILATION_VARIABLE, CONCURRENT_GC_VARIABLE)


def _getenv(variable: str) -> str | None:
    """The C library's view (what the runtime reads), not Python's copy."""
    libc = ctypes.CDLL(None)
    libc.getenv.restype = ctypes.c_char_p
    value: bytes | None = libc.getenv(variable.encode())
    return None if value is None else value.decode()


class RuntimeProbe(AsposeEngine):
    def recognize(self, source: Source) -> Recognition:
        report: dict[str, object] = {variable: _getenv(variable) for variable in VARIABLES}
        report["retain_image_for_export"] = bool(self._settings.retain_image_for_export)
        report["language_detection_level"] = self._settings.language_detection_level.name
        return Recognition((Page(json.dumps(report)),))
