"""Why a batch run cannot start (the command exits 2, having written nothing)."""

from __future__ import annotations

from ocrpool.errors import OcrPoolError


class BatchError(OcrPoolError):
    """Bad arguments or an unusable output; nothing was written."""


class InputNotFound(BatchError):
    """A command-line input is neither an existing path nor a glob pattern."""


class OutputRefused(BatchError):
    """The output would go inside an input folder, overwrite an input, or is not ours to
    append to (an image, a folder, a file of another format)."""


class OutputLocked(BatchError):
    """Another run is writing the same output right now."""
