"""``ocrpool models``: placeholder until the command lands."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("models", help="(not yet available)")
    parser.set_defaults(handler=lambda args: 2)
