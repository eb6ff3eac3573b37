"""Print pip constraints that pin each requirement of the package to its lower bound.

``make test-min`` installs with them, so every ``>=`` in pyproject.toml is a version the
tests have passed on rather than a guess. Usage: ``python scripts/lower_bounds.py [EXTRA...]``
(the core requirements and those of the named extras).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"


def lower_bounds(extras: list[str]) -> list[str]:
    """``name==version`` for each requirement's ``>=`` bound, in pyproject's order."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = [*project["dependencies"]]
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    for requirement in requirements:
        found = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*>=\s*([^,;\s]+).*", requirement)
        if found is None:
            raise SystemExit(f"{requirement!r} has no lower bound to test")
        pins.setdefault(found.group(1).lower(), found.group(2))
    return [f"{name}=={version}" for name, version in pins.items()]


if __name__ == "__main__":
    sys.stdout.write("".join(f"{pin}\n" for pin in lower_bounds(sys.argv[1:])))
