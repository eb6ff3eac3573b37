"""``python -m ocrpool`` and the ``ocrpool`` command's entry point.

Kept apart from ``ocrpool.cli``, which imports every command's modules: a Ctrl-C while
they load (the first tenth of a second) ends the command with 130 and one line, not an
import's traceback.
"""

import sys


def entry_point() -> None:
    try:
        from ocrpool.cli import entry_point as run_command
    except KeyboardInterrupt:  # nothing has begun
        print("ocrpool: interrupted", file=sys.stderr)
        sys.exit(130)  # ExitCode.INTERRUPTED, without importing its table
    run_command()


if __name__ == "__main__":
    entry_point()
