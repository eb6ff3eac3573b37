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


class OutputFailed(OcrPoolError):
    """Writing the output failed during the run (disk full, file too large, an I/O error,
    a symlink in the output folder that would lead a write outside it).

    Not a ``BatchError``: records were written, and every one of them is whole (a record
    cut short is taken back), so the same command resumes once there is room.
    """

    path: str = ""
    """The file that could not be written: the output, a text file or an export."""
    reason: str = ""
    """What the system said (``No space left on device``)."""

    @classmethod
    def of(cls, path: str, error: Exception) -> OutputFailed:
        reason = (error.strerror if isinstance(error, OSError) else None) or str(error)
        return cls(f"cannot write {path}: {reason}", path=path, reason=reason)
