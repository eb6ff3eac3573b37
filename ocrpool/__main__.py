"""``python -m ocrpool`` and the ``ocrpool`` command's entry point.

Kept apart from ``ocrpool.cli``, which imports every command's modules: a Ctrl-C while
they load (the first tenth of a second) ends the command with 130 and one line, not an
import's traceback.
"""

import os
import sys


def entry_point() -> None:
    _plug_standard_descriptors()
    try:
        from ocrpool.cli import entry_point as run_command
    except KeyboardInterrupt:  # nothing has begun
        print("ocrpool: interrupted", file=sys.stderr)
        sys.exit(130)  # ExitCode.INTERRUPTED, without importing its table
    run_command()


def _plug_standard_descriptors() -> None:
    """A process started with descriptor 0, 1 or 2 closed (``2>&-``, a daemon) gets the
    null device there, before anything is imported or opened: else the next file opened
    (the output) would take that number, and what writes to standard error (a log line,
    a native library, a worker) would write into it. ``sys.stdin`` and ``sys.stdout``
    stay ``None``, so ``--from-list -`` and ``-o -`` are refused; ``sys.stderr`` becomes
    the null device."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stderr is None:
        sys.stderr = open(2, "w", errors="backslashreplace", closefd=False)  # noqa: SIM115


if __name__ == "__main__":
    entry_point()
