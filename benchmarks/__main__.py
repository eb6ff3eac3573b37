"""``python -m benchmarks``: check that the ``bench`` extra is installed, then run the
command line (``benchmarks/cli.py``), which imports what the extra provides."""

from __future__ import annotations

import sys

from benchmarks.requirements import NEEDED, message, missing


def main() -> int:
    absent = missing(NEEDED)
    if absent:
        print(message(absent), file=sys.stderr)
        return 2
    from benchmarks.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
