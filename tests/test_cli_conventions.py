"""What every ``ocrpool`` command shares: ``--version``, ``-v``/``-q``/``--log-level`` on
either side of the command's name, and a ``--help`` ending with examples and exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_batch_admission import write_png

import ocrpool
import ocrpool.service.server
from ocrpool.batch.summary import Summary, Tally
from ocrpool.cli import build_parser, main
from ocrpool.cli.conventions import log_level
from ocrpool.cli.pool_options import pool_options
from ocrpool.error_codes import ExitCode
from ocrpool.pool.config import PoolConfig, env_name
from ocrpool.service.settings import ServiceSettings

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


_INTERRUPTED_WHILE_LOADING = """
import sys

class Interrupt:  # Ctrl-C as the command's modules load
    def find_spec(self, name, path=None, target=None):
        if name == "ocrpool.cli":
            raise KeyboardInterrupt

sys.meta_path.insert(0, Interrupt())
from ocrpool.__main__ import entry_point

entry_point()
"""


def test_a_ctrl_c_while_the_command_loads_exits_130_without_a_traceback() -> None:
    command = [sys.executable, "-c", _INTERRUPTED_WHILE_LOADING, "run", "x", "--out", "r.jsonl"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (ExitCode.INTERRUPTED, "ocrpool: interrupted\n")


def test_version_prints_the_package_version_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == ExitCode.OK
    assert capsys.readouterr().out == f"ocrpool {ocrpool.__version__}\n"


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
    assert pool_options(args, {})["engine_options"] == {
        "rotate_pages": False,
        "spellcheck": "deu",
        "language": "deu",
    }


# ---- OCRPOOL_* environment variables ---------------------------------------------------


@pytest.mark.parametrize("settings", [PoolConfig, ServiceSettings])
def test_every_setting_has_a_variable_named_after_it(settings: type) -> None:
    names = [
        f.name for f in dataclasses.fields(settings) if f.name not in ("pool", "engine_options")
    ]
    assert all(env_name(name) == "OCRPOOL_" + name.upper() for name in names)
    assert env_name("max_jobs_per_worker") == "OCRPOOL_MAX_JOBS_PER_WORKER"


@pytest.mark.parametrize("command", ["run", "serve"])
def test_help_names_the_variable_of_each_setting_flag(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = " ".join(_help(capsys, command).split())
    pool = ["workers", "max_jobs_per_worker", "max_rss_mb", "job_timeout", "engine", "max_pixels"]
    service = ["host", "port", "token", "max_queue", "max_pages", "result_ttl_s", "access_log"]
    for name in pool + (service if command == "serve" else []):
        assert f"${env_name(name)}" in text


def _stored_pool_options(tmp_path: Path, *flags: str) -> dict[str, object]:
    """What ``ocrpool run`` would give ``OcrPool``, from the SQLite ``runs`` table (nothing
    to OCR, so no pool starts)."""
    (tmp_path / "empty").mkdir(exist_ok=True)
    out = tmp_path / "r.db"
    out.unlink(missing_ok=True)
    assert main(["run", str(tmp_path / "empty"), "-o", str(out), "--format", "sqlite", *flags]) == 0
    with sqlite3.connect(out) as db:
        options: dict[str, object] = json.loads(
            db.execute("SELECT options FROM runs").fetchone()[0]
        )
    return options


def test_run_reads_pool_settings_from_the_environment_and_a_flag_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCRPOOL_MAX_JOBS_PER_WORKER", "7")
    monkeypatch.setenv("OCRPOOL_SPARES", "0")
    monkeypatch.setenv("OCRPOOL_JOB_TIMEOUT", "none")
    monkeypatch.setenv("OCRPOOL_KILL_GRACE", "0.5")  # a setting without a flag
    monkeypatch.setenv("OCRPOOL_RSS_RELATIVE", "true")
    monkeypatch.setenv("OCRPOOL_ENGINE", "fake")
    monkeypatch.setenv("OCRPOOL_RETRIES", "")  # empty: unset
    monkeypatch.setenv("OCRPOOL_SPLIT_PAGES", "false")
    monkeypatch.setenv("OCRPOOL_PAGES_PER_JOB", "3")
    monkeypatch.setenv("OCRPOOL_MAX_PIXELS", "5000000")  # admission's and the workers'
    pool = _stored_pool_options(tmp_path, "--spares", "2", "--split-min-pages", "9")["pool"]
    assert pool == {
        "max_jobs_per_worker": 7,
        "max_rss_mb": 1024.0,
        "hard_rss_mb": None,
        "job_timeout": None,
        "retries": 1,
        "spares": 2,
        "engine": "fake",
        "kill_grace": 0.5,
        "rss_relative": True,
        "split_pages": False,
        "pages_per_job": 3,
        "split_min_pages": 9,
        "max_pixels": 5_000_000,
        "engine_options": {},
    }


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OCRPOOL_WORKERS", "many", "OCRPOOL_WORKERS='many': expected an integer"),
        ("OCRPOOL_SPARES", "-1", "OCRPOOL_SPARES: spares must be 0 or more"),
        ("OCRPOOL_RSS_RELATIVE", "maybe", "OCRPOOL_RSS_RELATIVE='maybe': expected true or false"),
        ("OCRPOOL_MAX_PIXELS", "big", "OCRPOOL_MAX_PIXELS='big': expected an integer or none"),
        ("OCRPOOL_MAX_PIXELS", "-5", "OCRPOOL_MAX_PIXELS: max_pixels must be 0 or more"),
    ],
)
def test_a_bad_variable_is_a_usage_error_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["run", str(tmp_path), "-o", str(tmp_path / "r.jsonl")]) == ExitCode.USAGE
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert main(["serve"]) == ExitCode.USAGE
    assert f"ocrpool serve: error: {message}" in capsys.readouterr().err


def test_run_reads_max_pixels_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_png(tmp_path / "a.png")
    monkeypatch.setenv("OCRPOOL_MAX_PIXELS", "10")
    argv = ["run", str(tmp_path / "a.png"), "-o", str(tmp_path / "r.jsonl"), "-q"]
    argv += ["--engine", "fake", "--workers", "1", "--spares", "0"]
    assert main(argv) == ExitCode.SOME_FAILED
    assert main([*argv, "--retry-failed", "--max-pixels", "0"]) == ExitCode.OK


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_negative_max_pixels_flag_is_a_usage_error(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Taken, every image was over it: each input failed as ``ImageTooLarge``."""
    argv = ["run", str(tmp_path), "-o", str(tmp_path / "r.jsonl")] if command == "run" else []
    assert main([*(argv or [command]), "--max-pixels=-5"]) == ExitCode.USAGE
    assert "--max-pixels must be 0 or more (0: no limit)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_serve_reads_every_setting_from_the_environment_and_a_flag_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[ServiceSettings] = []
    monkeypatch.setattr(
        ocrpool.service.server, "serve", lambda settings, on_listening: served.append(settings)
    )
    environment = {
        "HOST": "::1",
        "PORT": "9100",
        "TOKEN": "secret",
        "ALLOW_PATH_PREFIX": str(tmp_path),
        "MAX_BODY_MB": "8",
        "BODY_TIMEOUT_S": "30",
        "MAX_QUEUE": "5",
        "MAX_PAGES": "50",
        "MAX_PIXELS": "none",
        "RESULT_TTL_S": "60",
        "MAX_RESULTS": "10",
        "MAX_RESULTS_MB": "16",
        "DRAIN_TIMEOUT_S": "0",
        "UNHEALTHY_AFTER_S": "30",
        "ACCESS_LOG": "yes",
        "CORS_ORIGINS": "https://a.example, https://b.example",
        "WORKERS": "3",
        "ENGINE": "fake",
    }
    for name, value in environment.items():
        monkeypatch.setenv(f"OCRPOOL_{name}", value)
    argv = ["serve", "--port", "9200", "--max-queue", "6"]
    assert main(argv) == ExitCode.OK
    assert main([*argv, "--cors-origin", "https://c.example"]) == ExitCode.OK
    assert served.pop().cors_origins == ("https://c.example",)
    (settings,) = served
    assert dataclasses.asdict(settings) == {
        "pool": settings.pool,
        "host": "::1",
        "port": 9200,
        "token": "secret",
        "allow_path_prefix": str(tmp_path),
        "max_body_mb": 8.0,
        "body_timeout_s": 30.0,
        "max_queue": 6,
        "max_pages": 50,
        "max_pixels": None,
        "result_ttl_s": 60.0,
        "max_results": 10,
        "max_results_mb": 16.0,
        "drain_timeout_s": 0.0,
        "unhealthy_after_s": 30.0,
        "access_log": True,
        "cors_origins": ("https://a.example", "https://b.example"),
    }
    assert (settings.pool["workers"], settings.pool["engine"]) == (3, "fake")


# ---- --from-list FILE -0 ---------------------------------------------------------------

NAMES = ("new\nline.png", "carriage\r.png", "plain.png")


def _odd_names(tmp_path: Path) -> bytes:
    """``find -print0`` output naming images whose names hold a newline and a \\r."""
    (tmp_path / "in").mkdir()
    for name in NAMES:
        write_png(tmp_path / "in" / name)
    return b"".join(os.fsencode(tmp_path / "in" / name) + b"\0" for name in NAMES)


def test_from_list_with_0_reads_nul_separated_names(tmp_path: Path) -> None:
    (tmp_path / "list").write_bytes(_odd_names(tmp_path))
    out = tmp_path / "r.jsonl"
    argv = ["run", "--from-list", str(tmp_path / "list"), "-0", "-o", str(out), "-q"]
    assert main([*argv, "--engine", "fake", "--workers", "1", "--spares", "0"]) == ExitCode.OK
    paths = {json.loads(line)["path"] for line in out.read_text().splitlines()}
    assert paths == {str(tmp_path / "in" / name) for name in NAMES}


def test_find_print0_piped_into_run(tmp_path: Path) -> None:
    listing = _odd_names(tmp_path)
    out = tmp_path / "r.jsonl"
    argv = ["run", "--from-list", "-", "-0", "-o", str(out), "--engine", "fake", "--spares", "0"]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ocrpool"), *argv], input=listing, capture_output=True
    )
    assert done.returncode == ExitCode.OK, done.stderr
    paths = {json.loads(line)["path"] for line in out.read_text().splitlines()}
    assert paths == {str(tmp_path / "in" / name) for name in NAMES}


def test_0_without_from_list_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(tmp_path), "-0", "-o", str(tmp_path / "r.jsonl")]) == ExitCode.USAGE
    assert "-0 needs --from-list" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("interval", ["-1", "nan", "inf"])
def test_a_progress_interval_that_is_not_some_seconds_is_a_usage_error(
    interval: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``nan`` and ``inf`` meant no progress line ever, and were taken."""
    out = tmp_path / "r.jsonl"
    with pytest.raises(SystemExit) as stopped:
        main(["run", str(tmp_path), "-o", str(out), f"--progress-interval={interval}"])
    assert stopped.value.code == ExitCode.USAGE
    assert "argument --progress-interval: must be" in capsys.readouterr().err
    assert not out.exists()


# ---- -o - ------------------------------------------------------------------------------


def _run_to_stdout(folder: Path, *extra: str) -> int:
    argv = ["run", str(folder), "-o", "-", "--engine", "fake", "--workers", "1", "--spares", "0"]
    return main([*argv, "--progress-interval", "0", *extra])


def test_out_dash_writes_records_to_stdout_and_the_rest_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.png"):
        write_png(tmp_path / "in" / name)
    for _ in range(2):  # no ledger: the rerun does both inputs again
        assert _run_to_stdout(tmp_path / "in") == ExitCode.OK
        out, err = capfd.readouterr()
        records = [json.loads(line) for line in out.splitlines()]
        paths = {str(tmp_path / "in" / name) for name in ("a.png", "b.png")}
        assert len(records) == 2 and {r["path"] for r in records} == paths
        assert all(r["ok"] for r in records)
        assert "ocrpool run: done" in err and "ocrpool: 2/2 done" in err
        assert "done before:  0 ok, 0 failed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no file named '-'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "sqlite"], "--out - writes JSON Lines only, not sqlite"),
        (["--format", "txt"], "--out - writes JSON Lines only, not txt"),
        (["--export", "pdf"], "exports with --out - need --export-dir"),
    ],
)
def test_out_dash_refuses_what_stdout_cannot_hold(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "a.png")
    assert _run_to_stdout(tmp_path / "a.png", *extra) == ExitCode.USAGE
    out, err = capfd.readouterr()
    assert out == "" and message in err
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_a_stopped_run_to_stdout_says_a_rerun_starts_over() -> None:
    head = Summary(Tally(), 1.0, interrupted=True, resumable=False).lines()[0]
    assert head == (
        "ocrpool run: interrupted (standard output keeps no ledger: a rerun does every input again)"
    )
    assert "resume" in Summary(Tally(), 1.0, interrupted=True).lines()[0]
