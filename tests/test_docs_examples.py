"""Every Python example of the README and the docs runs; every command a sample shows exists.

The blocks and their markers are read by ``scripts/doc_blocks.py`` (which says what each
marker means); the console samples' outputs come from ``scripts/refresh_samples.py``.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ocrpool.cli import build_parser
from scripts.doc_blocks import (
    FAKE_EXAMPLE,
    ROOT,
    SAMPLE,
    SAMPLE_OUTPUT,
    Block,
    all_blocks,
    commands,
    program_argv,
)

EXAMPLE_TIMEOUT_S = 600


def _marks(block: Block) -> list[pytest.MarkDecorator]:
    """As written an example runs the real (default) engine; Ray's start is slow too."""
    if block.marker != FAKE_EXAMPLE:
        return [pytest.mark.aspose, pytest.mark.slow]
    return [pytest.mark.slow] if "RayOcrPool" in block.code else []


def _with_the_fake_engine(code: str) -> str:
    assert re.search(r'engine="\w+"', code), "a fake-engine example names its engine"
    return re.sub(r'engine="\w+"', 'engine="fake"', code)


def _run_in_an_example_folder(folder: Path, script: Path) -> str:
    """Run ``script`` where it finds what the examples name, as in the repository's root;
    what it printed."""
    (folder / "examples").symlink_to(ROOT / "examples")
    with Image.open(ROOT / "examples/images/phototest.tif") as scan:
        scan.rotate(180).save(folder / "upside-down.png")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=b.name, marks=_marks(b)) for b in all_blocks("python")]
)
def test_the_example_runs(block: Block, tmp_path: Path) -> None:
    code = _with_the_fake_engine(block.code) if block.marker == FAKE_EXAMPLE else block.code
    (tmp_path / "example.py").write_text(code)
    printed = _run_in_an_example_folder(tmp_path, tmp_path / "example.py")
    assert printed.strip(), "an example shows what it did"


@pytest.mark.aspose
@pytest.mark.slow
@pytest.mark.parametrize("script", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.name)
def test_the_example_script_runs(script: Path, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()  # the script is not in the folder it runs in
    assert "completed" in _run_in_an_example_folder(tmp_path / "work", script)


PARSER_MODULES = {"benchmarks": "benchmarks.cli", "tests.reliability": "tests.reliability.__main__"}
"""Where each program other than ``ocrpool`` builds its parser."""


def _parser(program: str) -> object:
    if program == "ocrpool":
        return build_parser()
    return importlib.import_module(PARSER_MODULES[program]).build_parser()


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.MULTILINE))


FOUND = [
    (f"{block.name} {command[:60]}", found)
    for block in all_blocks("console")
    for command in commands(block)
    if (found := program_argv(command)) is not None
]


@pytest.mark.parametrize("program_and_argv", [pytest.param(f, id=name) for name, f in FOUND])
def test_a_sample_command_exists(program_and_argv: tuple[str, list[str]]) -> None:
    """The command parses with the program's real parser (or names a Makefile target)."""
    program, argv = program_and_argv
    if program == "make":
        assert set(argv) <= _make_targets()
        return
    try:
        _parser(program).parse_args(argv)  # type: ignore[attr-defined]
    except SystemExit as stop:  # --help and --version exit 0
        assert stop.code == 0, f"{program} {' '.join(argv)}"


def test_the_samples_cover_the_main_commands() -> None:
    programs = {program for _, (program, _) in FOUND}
    assert {"ocrpool", "make", "benchmarks", "tests.reliability"} <= programs


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b, id=b.name)
        for kind in ("console", "text")
        for b in all_blocks(kind)
        if b.marker in (SAMPLE, SAMPLE_OUTPUT)
    ],
)
def test_a_marked_sample_holds_a_real_run(block: Block) -> None:
    """A marked sample starts with its first command and shows output (the refresh script
    ran: a block with only its commands has not been refreshed)."""
    lines = block.code.splitlines()
    if block.marker == SAMPLE:
        assert lines and lines[0].startswith("$ ")
    assert [line for line in lines if not line.startswith("$ ")]
