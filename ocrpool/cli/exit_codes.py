"""Exit codes of the ``ocrpool`` command."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    """Everything asked for succeeded."""
    SOME_FAILED = 1
    """The command ran, but some inputs failed (or a check did not pass)."""
    USAGE = 2
    """Bad arguments or a broken environment; ``ocrpool doctor`` says what is missing."""
    OUTPUT_FAILED = 3
    """The output could not be written mid-run (disk full); a rerun resumes."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C or SIGTERM; a rerun resumes."""
