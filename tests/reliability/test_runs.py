"""``ocrpool run`` killed at random points and resumed over one output, and an output
whose disk fills up mid-run."""

from __future__ import annotations

import functools
import random
import signal
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import psutil
import pytest

from ocrpool.batch import StopSignals
from ocrpool.error_codes import ExitCode
from tests.support.served import pool_workers, wait_until

from .runs import (
    file_size_limit,
    kill_and_resume,
    line_count,
    make_images,
    processes_left,
    recorded_paths,
    start,
)


@pytest.mark.slow
def test_sigkill_and_sigterm_at_random_points_then_resume(tmp_path: Path) -> None:
    # 50 ms a job: a run reaches the point it is stopped at while records are still due
    report = kill_and_resume(tmp_path, 80, 5, random.Random(7), "--engine-option", "delay=0.05")
    assert report.problems == []
    assert sum(report.kills.values()) >= 3
    assert report.exit_codes[ExitCode.OK] >= 1


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "limit"), [("jsonl", 6000), ("txt", 6000), ("sqlite", 60_000)])
def test_a_file_size_limit_stops_the_run_clearly_and_the_next_run_resumes(
    tmp_path: Path, fmt: str, limit: int
) -> None:
    inputs = make_images(tmp_path / "inputs", 300 if fmt == "sqlite" else 40)
    out = tmp_path / ("texts" if fmt == "txt" else f"results.{fmt}")
    tag = uuid.uuid4().hex
    full = start(tmp_path / "inputs", out, tag, "--format", fmt, preexec=file_size_limit(limit))
    _, err = full.communicate(timeout=120)
    assert full.returncode == ExitCode.OUTPUT_FAILED, err
    assert "cannot write" in err and "the same command resumes" in err
    assert "Traceback" not in err
    assert processes_left(tag) == []
    written = recorded_paths(out, fmt)  # whole: every record parses
    assert 0 < len(written) < len(inputs)
    resumed = start(tmp_path / "inputs", out, tag, "--format", fmt)
    assert resumed.wait(timeout=120) == ExitCode.OK
    assert Counter(recorded_paths(out, fmt)) == Counter(inputs)


@pytest.mark.slow
def test_a_full_disk_stops_the_run_clearly_and_the_next_run_resumes(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        inputs = make_images(tmp_path / "inputs", 60)
        out = disk / "results.jsonl"
        tag = uuid.uuid4().hex
        full = start(tmp_path / "inputs", out, tag)
        _, err = full.communicate(timeout=120)
        assert full.returncode == ExitCode.OUTPUT_FAILED, err
        assert "No space left on device" in err
        assert out.read_bytes().endswith(b"\n")  # the record cut short was taken back
        written = recorded_paths(out, "jsonl")
        assert 0 < len(written) < len(inputs)
        moved = tmp_path / "results.jsonl"  # room again: the output moves to a bigger disk
        moved.write_bytes(out.read_bytes())
        resumed = start(tmp_path / "inputs", moved, tag)
        assert resumed.wait(timeout=120) == ExitCode.OK
        assert Counter(recorded_paths(moved, "jsonl")) == Counter(inputs)
        assert processes_left(tag) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
def test_a_stop_signal_after_the_last_record_changes_nothing(tmp_path: Path) -> None:
    """A SIGTERM that landed after the stop handler was gone (the summary, the
    interpreter's exit) used to kill a finished run: exit -15 instead of 0."""
    make_images(tmp_path / "inputs", 10)
    out = tmp_path / "results.jsonl"
    with StopSignals() as stop:
        stop.finish()
        signal.raise_signal(signal.SIGTERM)  # ignored: nothing raised
    tag = uuid.uuid4().hex
    for _ in range(3):
        run = start(tmp_path / "inputs", out, tag)
        wait_until(functools.partial(_ended, out, psutil.Process(run.pid)), 60, "its end")
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) in (ExitCode.OK, ExitCode.INTERRUPTED)
        out.unlink()


def _ended(out: Path, run: psutil.Process) -> bool:
    """Every record written and every worker gone: the run is closing its output."""
    return line_count(out) >= 10 and not pool_workers(run)
