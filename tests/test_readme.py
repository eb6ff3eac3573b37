"""The README is the manual: the options and flags it documents exist in the code."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from ocrpool.cli import build_parser
from ocrpool.engines.aspose.engine import AsposeEngine
from ocrpool.engines.fake import FakeEngine
from ocrpool.pool.config import PoolConfig, env_name
from ocrpool.scaleout import RayOcrPool
from ocrpool.service.settings import ServiceSettings

README = (Path(__file__).parent.parent / "README.md").read_text()


def _table_names(heading: str) -> list[str]:
    """The first-column names of the table right after ``heading``."""
    section = README.split(heading, 1)[1]
    table = re.search(r"\n(\|.*\|\n)+", section)
    assert table is not None, heading
    rows = table.group(0).strip().splitlines()[2:]
    return [re.findall(r"`([^`]+)`", row.split("|")[1])[0] for row in rows]


def test_every_documented_pool_option_exists() -> None:
    documented = set(_table_names("### Options"))
    fields = {f.name for f in dataclasses.fields(PoolConfig)} | {"on_worker_exit"}
    assert documented == fields


@pytest.mark.parametrize(
    ("heading", "engine"), [("### `aspose` (default)", AsposeEngine), ("### `fake`", FakeEngine)]
)
def test_every_engine_option_is_documented(heading: str, engine: type) -> None:
    documented = set(_table_names(heading))
    assert documented == set(engine.__init__.__kwdefaults__ or {})


@pytest.mark.parametrize(
    ("command", "start", "end"),
    [
        ("run", "## Batch OCR of folders", "### The record"),
        ("serve", "## A shared OCR service", "\n## "),
    ],
)
def test_every_documented_flag_exists(
    command: str, start: str, end: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    command_help = capsys.readouterr().out
    section = README.split(start, 1)[1].split(end, 1)[0]
    flags = set(re.findall(r"`(--[a-z-]+)", section))
    assert len(flags) > 10
    assert {flag for flag in flags if flag not in command_help} == set()


def test_every_documented_ray_option_exists() -> None:
    documented = set(_table_names("## Scaling out"))
    parameters = inspect.signature(RayOcrPool).parameters.values()
    assert documented == {p.name for p in parameters if p.kind is not p.VAR_KEYWORD}


def test_every_setting_variable_is_documented() -> None:
    section = README.split("## The `ocrpool` command", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(OCRPOOL_[A-Z_]+)`", section))
    fields = dataclasses.fields(PoolConfig) + dataclasses.fields(ServiceSettings)
    settings = {env_name(f.name) for f in fields if f.name not in ("engine_options", "pool")}
    assert documented == settings | {"OCRPOOL_LICENSE"}
