"""The docs pages are the manual: the options and flags they document exist in the code."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import ocrpool
from ocrpool.cli import build_parser
from ocrpool.engines.aspose.engine import AsposeEngine
from ocrpool.engines.fake import FakeEngine
from ocrpool.pool.config import PoolConfig, env_name
from ocrpool.scaleout import RayOcrPool
from ocrpool.service.settings import ServiceSettings
from scripts.docs_hooks import api_reference, cli_reference, commands

DOCS = Path(__file__).parent.parent / "docs"


def page(name: str) -> str:
    """The text of a docs page: ``page("guide/python.md")``."""
    return (DOCS / name).read_text()


def _table_names(text: str, heading: str) -> list[str]:
    """The first-column names of the table right after ``heading`` in ``text``."""
    section = text.split(heading, 1)[1]
    table = re.search(r"\n(\|.*\|\n)+", section)
    assert table is not None, heading
    rows = table.group(0).strip().splitlines()[2:]
    return [re.findall(r"`([^`]+)`", row.split("|")[1])[0] for row in rows]


def test_every_documented_pool_option_exists() -> None:
    documented = set(_table_names(page("guide/python.md"), "## Options"))
    fields = {f.name for f in dataclasses.fields(PoolConfig)} | {"on_worker_exit"}
    assert documented == fields


@pytest.mark.parametrize(
    ("heading", "engine"), [("## `aspose` (default)", AsposeEngine), ("## `fake`", FakeEngine)]
)
def test_every_engine_option_is_documented(heading: str, engine: type) -> None:
    documented = set(_table_names(page("guide/engines.md"), heading))
    assert documented == set(engine.__init__.__kwdefaults__ or {})


@pytest.mark.parametrize(
    ("command", "name", "end"),
    [("run", "guide/batch.md", "## The record"), ("serve", "guide/service.md", None)],
)
def test_every_documented_flag_exists(
    command: str, name: str, end: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    command_help = capsys.readouterr().out
    section = page(name) if end is None else page(name).split(end, 1)[0]
    flags = set(re.findall(r"`(--[a-z-]+)", section))
    assert len(flags) > 10
    assert {flag for flag in flags if flag not in command_help} == set()


def test_every_documented_ray_option_exists() -> None:
    documented = set(_table_names(page("guide/scaling-out.md"), "# Scaling out"))
    parameters = inspect.signature(RayOcrPool).parameters.values()
    assert documented == {p.name for p in parameters if p.kind is not p.VAR_KEYWORD}


def test_every_setting_variable_is_documented() -> None:
    documented = set(re.findall(r"`(OCRPOOL_[A-Z_]+)`", page("guide/cli.md")))
    fields = dataclasses.fields(PoolConfig) + dataclasses.fields(ServiceSettings)
    settings = {env_name(f.name) for f in fields if f.name not in ("engine_options", "pool")}
    assert documented == settings | {"OCRPOOL_LICENSE"}


def test_the_api_reference_has_every_public_name() -> None:
    documented = re.findall(r"^## `([\w]+)`$", api_reference(), flags=re.MULTILINE)
    assert sorted(documented) == sorted(ocrpool.__all__)


def test_the_cli_reference_has_every_command() -> None:
    reference = cli_reference()
    for words, _ in commands(build_parser()):
        assert f"## `{' '.join(('ocrpool', *words))}`" in reference
    assert "ocrpool models prune" in reference and "--retry-failed" in reference
