"""What ``python -m benchmarks`` needs beyond ocrpool itself: the ``bench`` extra."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

NEEDED = ("matplotlib", "pebble", "psutil", "prometheus_client")
"""Plots, the peer pool, process trees, and the service benchmark's metrics; the Ray
backend's scenarios need ``ray`` too (checked when they are to run)."""


def missing(modules: Sequence[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here."""
    return [module for module in modules if importlib.util.find_spec(module) is None]


def message(absent: Sequence[str]) -> str:
    return (
        f"python -m benchmarks needs the 'bench' extra (missing: {', '.join(absent)}): "
        "pip install -e '.[bench]' (make setup installs it)"
    )
