"""Why a batch run cannot start (the command exits 2, having written nothing), cannot go
on (its output failed), or could not write one input's own files."""

from __future__ import annotations

import errno

from ocrpool.errors import OcrPoolError


class BatchError(OcrPoolError):
    """Bad arguments or an unusable output; nothing was written."""


class InputNotFound(BatchError):
    """A command-line input is neither an existing path nor a glob pattern."""


class OutputRefused(BatchError):
    """The output would go inside an input folder, overwrite an input, or is not ours to
    append to (an image, a folder, a file of another format)."""


class OutputNotAFile(OutputRefused):
    """The output file exists and is not a regular file: a FIFO or a device cannot be
    read back, resumed or synced (``--out -`` is how to write to standard output)."""

    path: str = ""
    """The output as given."""
    kind: str = ""
    """What it is instead (``FIFO``, ``character device``)."""


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
        reason = _reason(error)
        return cls(f"cannot write {path}: {reason}", path=path, reason=reason)


class OutputNameRefused(OcrPoolError):
    """The system refused the name of one input's own file (its text file or an export):
    too long, or a folder or a file in the way. That input fails; the run goes on, as
    the fault is in that name, not in the output."""

    path: str = ""
    """The file that could not be written."""
    reason: str = ""
    """What the system said (``File name too long``)."""


_NAME_ERRORS = frozenset({errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR})


def write_error(path: str, error: OSError) -> OutputNameRefused | OutputFailed:
    """What writing ``path``, one input's own file, failing with ``error`` means: a
    refused name fails that input alone; anything else (a full disk) ends the run."""
    if error.errno in _NAME_ERRORS:
        reason = _reason(error)
        return OutputNameRefused(f"cannot write {path}: {reason}", path=path, reason=reason)
    return OutputFailed.of(path, error)


def _reason(error: Exception) -> str:
    return (error.strerror if isinstance(error, OSError) else None) or str(error)
