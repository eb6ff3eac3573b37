"""What machine and software a benchmark ran on, for the report's header."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil

_MB = 1024 * 1024


@dataclass(frozen=True)
class Machine:
    cores: int
    memory_mb: float
    cpu_model: str
    system: str
    python: str
    versions: dict[str, str]
    """Installed versions of the packages compared (read from metadata: nothing imported)."""

    def describe(self) -> list[str]:
        """One line per fact, for a Markdown list."""
        versions = ", ".join(f"{name} {version}" for name, version in self.versions.items())
        return [
            f"CPU: {self.cpu_model}, {self.cores} cores",
            f"memory: {self.memory_mb / 1024:.1f} GB",
            f"system: {self.system}",
            f"Python {self.python}; {versions}",
        ]


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def this_machine() -> Machine:
    return Machine(
        cores=os.cpu_count() or 1,
        memory_mb=psutil.virtual_memory().total / _MB,
        cpu_model=_cpu_model(),
        system=platform.platform(),
        python=platform.python_version(),
        versions={
            "ocrpool": _version("ocrpool"),
            "aspose-ocr-python-net": _version("aspose-ocr-python-net"),
            "pebble": _version("pebble"),
            "psutil": _version("psutil"),
        },
    )


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15-minute load averages: how busy the machine was."""
    return os.getloadavg()
