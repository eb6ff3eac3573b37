"""``python -m ocrpool``: the ``ocrpool`` command."""

from ocrpool.cli import entry_point

entry_point()
