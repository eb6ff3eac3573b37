"""Aspose's errors as ocrpool errors.

Aspose raises ``RuntimeError("Proxy error(<.NET type>): <message>")`` for everything;
``translate_error`` names the input (not the temporary file bytes went through) and
picks the ocrpool type a caller can act on.
"""

from __future__ import annotations

import re

from ocrpool.errors import EngineError, InvalidInput, OcrPoolError, ResourceUnavailable

_PROXY_PREFIX = re.compile(r"^Proxy error\(.*?\):\s*", re.DOTALL)
_MISSING_RESOURCE = re.compile(r"(?:Please install the|Automatic download of) '([^']+)'")
_KIND = re.compile(r"^Proxy error\((\w+)\)")
_INPUT_FAULTS = frozenset({"InvalidPdfFileFormatException", "InvalidPasswordException"})
"""The .NET exceptions Aspose raises for a PDF it cannot read: corrupt, cut short, or
encrypted."""


def detail(message: str) -> str:
    """Aspose's message without its ``Proxy error(...)`` prefix."""
    return _PROXY_PREFIX.sub("", message).strip()


def translate_error(message: str, path: str, label: str) -> OcrPoolError:
    """Aspose's ``Proxy error(...)`` message as an ocrpool error about ``label``."""
    text = detail(message).replace(path, label)
    missing = _MISSING_RESOURCE.search(text)
    if missing:
        resource = missing.group(1)
        return ResourceUnavailable(
            f"{label}: these settings need the Aspose resource {resource!r}, which is not on "
            "this machine. Put it in a directory and pass that as the engine option "
            "resource_dir, or set allow_downloads=True where the internet is reachable.",
            resource=resource,
            input=label,
        )
    kind = _KIND.match(message)
    if kind is not None and kind.group(1) in _INPUT_FAULTS:
        return InvalidInput(
            f"{label}: Aspose cannot read it ({kind.group(1)}): {text}", input=label
        )
    if "Error during open file" in text:
        cause = text.rpartition("--->")[2].strip()
        return InvalidInput(
            f"{label}: Aspose cannot open it (corrupt or unsupported): {cause}", input=label
        )
    return EngineError(f"{label}: {text}", input=label)
