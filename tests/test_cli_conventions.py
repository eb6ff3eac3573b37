"""What every ``ocrpool`` command shares: ``--version``, ``-v``/``-q``/``--log-level`` on
either side of the command's name, and a ``--help`` ending with examples and exit codes."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import re
from pathlib import Path

import pytest
from test_batch_admission import write_png

from ocrpool.cli import build_parser, main
from ocrpool.cli.conventions import log_level
from ocrpool.cli.pool_options import pool_options
from ocrpool.error_codes import ExitCode

COMMANDS = {  # a command line of each command, with what it requires
    "run": ["run", "x", "-o", "r.jsonl"],
    "serve": ["serve"],
    "doctor": ["doctor"],
    "models": ["models", "list"],
}


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args([*argv, "--help"])
    assert caught.value.code == 0
    return capsys.readouterr().out


def test_version_prints_the_package_version_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == ExitCode.OK
    assert capsys.readouterr().out == f"ocrpool {importlib.metadata.version('ocrpool')}\n"


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("flags", "level"),
    [
        ([], logging.WARNING),
        (["-v"], logging.INFO),
        (["-vv"], logging.DEBUG),
        (["-q"], logging.ERROR),
        (["--log-level", "debug"], logging.DEBUG),
        (["--quiet", "--log-level", "INFO"], logging.INFO),
    ],
)
def test_output_flags_work_before_or_after_the_command(
    command: str, flags: list[str], level: int
) -> None:
    argv = COMMANDS[command]
    before = build_parser().parse_args([*flags, *argv])
    after = build_parser().parse_args([*argv, *flags])
    assert log_level(before) == log_level(after) == level
    assert before.quiet == after.quiet == ("-q" in flags or "--quiet" in flags)


def test_a_flag_before_the_command_is_not_reset_after_it() -> None:
    args = build_parser().parse_args(["-q", "--log-level", "error", "models", "-v", "list"])
    assert (args.quiet, args.log_level, args.verbose) == (True, "ERROR", 1)


def test_an_unknown_log_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["doctor", "--log-level", "loud"])
    assert caught.value.code == ExitCode.USAGE
    assert "--log-level" in capsys.readouterr().err


@pytest.mark.parametrize("position", ["before", "after"])
def test_quiet_run_prints_nothing_on_either_side(
    tmp_path: Path, position: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_png(tmp_path / "a.png")
    argv = ["run", str(tmp_path / "a.png"), "-o", str(tmp_path / "r.jsonl"), "--engine", "fake"]
    argv += ["--workers", "1", "--spares", "0"]
    assert main(["-q", *argv] if position == "before" else [*argv, "-q"]) == ExitCode.OK
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "argv", [[], *([name] for name in COMMANDS), ["models", "prune"]], ids=lambda a: " ".join(a)
)
def test_help_ends_with_examples_and_the_exit_codes_of_exit_code(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(capsys, *argv)
    examples, codes = text.split("\nexamples:\n", 1)[1].split("\nexit codes:\n")
    assert len(re.findall(r"^  \$ .*ocrpool ", examples, re.M)) in (2, 3)
    rows = [re.fullmatch(r" +(\d+)  (.+)", line) for line in codes.strip("\n").splitlines()]
    listed = {ExitCode(int(row.group(1))): row.group(2) for row in rows if row}
    assert len(listed) == len(rows) and ExitCode.OK in listed
    assert all(text == code.description for code, text in listed.items())


def test_run_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    codes = _help(capsys, "run").split("\nexit codes:\n")[1]
    assert [int(line.split()[0]) for line in codes.strip().splitlines()] == list(ExitCode)


def _groups(command: str) -> dict[str, set[str]]:
    """The flags of each argument group of ``command``'s parser."""
    parser = build_parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        group.title or "": {
            flag for action in group._group_actions for flag in action.option_strings
        }
        for group in commands.choices[command]._action_groups
    }


@pytest.mark.parametrize("group", ["recognition", "pool", "output"])
def test_serve_and_run_share_the_recognition_and_pool_flags(group: str) -> None:
    run, serve = _groups("run"), _groups("serve")
    assert run[group] == serve[group] and len(run[group]) >= 3


def test_serve_passes_the_recognition_flags_to_its_engines() -> None:
    args = build_parser().parse_args(
        ["serve", "--no-rotate-pages", "--spellcheck", "deu", "--language", "deu"]
    )
    assert pool_options(args)["engine_options"] == {
        "rotate_pages": False,
        "spellcheck": "deu",
        "language": "deu",
    }
