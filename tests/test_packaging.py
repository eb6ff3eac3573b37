"""Packaging a user can depend on: one version, a changelog that names it, honest bounds."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import tomllib

import ocrpool

ROOT = Path(__file__).parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements() -> list[str]:
    extras = PROJECT["optional-dependencies"].values()
    found = [*PROJECT["dependencies"], *(req for reqs in extras for req in reqs)]
    return [req for req in found if not req.startswith("ocrpool[")]  # extras of itself


def test_the_version_is_written_once_and_installed_as_written() -> None:
    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    assert importlib.metadata.version("ocrpool") == ocrpool.__version__


def test_the_changelog_is_at_the_version() -> None:
    """Its newest entry is the version, or Unreleased while the text names the version."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    newest = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)[0]
    assert newest == ocrpool.__version__ or (
        newest == "Unreleased" and f"version {ocrpool.__version__}" in changelog
    )


def test_no_requirement_is_capped_without_a_known_break() -> None:
    assert [req for req in _requirements() if "<" in req] == []


def test_every_requirement_has_a_lower_bound_for_make_test_min() -> None:
    assert [req for req in _requirements() if ">=" not in req] == []
