"""``ocrpool run`` under fire: the process SIGKILLed or SIGTERMed at random points and
the same command run again, many times over one output; and an output whose disk fills.

Every run is tagged through its environment, so its workers are found after it dies,
wherever they were reparented; none may outlive it.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ocrpool.batch.ledger import path_from_sql
from ocrpool.batch.txt import RECORDS_NAME
from ocrpool.error_codes import ExitCode
from tests.support.served import wait_until

from .faults import Fault
from .invariants import output_exactly_once, records, tagged

OCRPOOL = str(Path(sys.executable).parent / "ocrpool")
TAG = "OCRPOOL_RELIABILITY_TAG"
FAKE = ["--engine", "fake", "--workers", "2", "--spares", "1", "--max-jobs", "20"]


def make_images(folder: Path, count: int) -> list[str]:
    """``count`` small real PNGs (the scan and the admission read them as images)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        path = folder / f"page {number:05d}.png"
        Image.new("L", (8, 8), number % 256).save(path)
        paths.append(str(path))
    return paths


def start(
    inputs: Path,
    out: Path,
    tag: str,
    *extra: str,
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [OCRPOOL, "run", str(inputs), "--out", str(out), *FAKE, "--quiet", *extra],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, TAG: tag},
        preexec_fn=preexec,
    )


def line_count(out: Path) -> int:
    return out.read_bytes().count(b"\n") if out.exists() else 0


def processes_left(tag: str) -> list[int]:
    """Pids still alive from runs under ``tag``, after giving them time to go."""
    try:
        wait_until(lambda: not list(tagged(tag, TAG)), 20, "the run's processes to exit")
    except TimeoutError:
        return [p.pid for p in tagged(tag, TAG)]
    return []


@dataclass
class KillReport:
    inputs: int
    kills: Counter[Fault] = field(default_factory=Counter)
    exit_codes: Counter[int] = field(default_factory=Counter)
    torn_lines: int = 0
    """Records cut short by a SIGKILL: operations of unknown outcome, which the next run
    cuts off and does again."""
    runs: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "runs": self.runs,
            "kills": {fault.value: n for fault, n in self.kills.items()},
            "exit_codes": {str(code): n for code, n in sorted(self.exit_codes.items())},
            "torn_records_unknown_then_redone": self.torn_lines,
            "problems": self.problems,
        }


def kill_and_resume(
    folder: Path, count: int, kills: int, rng: random.Random, *extra: str
) -> KillReport:
    """Kill ``ocrpool run`` ``kills`` times at random points (after a random number of new
    records, by SIGKILL or SIGTERM), resuming each time, then let one run finish; check
    the output and the processes after every episode."""
    inputs = make_images(folder / "inputs", count)
    out = folder / "results.jsonl"
    tag = uuid.uuid4().hex
    report = KillReport(count)
    for _ in range(kills):
        before = line_count(out)
        if before >= count:
            break
        point = before + rng.randint(1, max(1, (count - before) // 4))
        fault = rng.choice((Fault.RUN_SIGKILL, Fault.RUN_SIGTERM))
        run = start(folder / "inputs", out, tag, *extra)
        report.runs += 1
        wait_until(_reached(out, point, run), 120, f"{point} records")
        if run.poll() is None:
            run.send_signal(signal.SIGKILL if fault is Fault.RUN_SIGKILL else signal.SIGTERM)
            report.kills[fault] += 1
        run.communicate(timeout=60)
        report.exit_codes[run.returncode] += 1
        report.problems += _after_stop(out, tag, fault, run.returncode)
        if out.exists() and not out.read_bytes().endswith(b"\n"):
            report.torn_lines += 1
    final = start(folder / "inputs", out, tag, *extra)
    _, err = final.communicate(timeout=600)
    report.runs += 1
    report.exit_codes[final.returncode] += 1
    if final.returncode != ExitCode.OK:
        report.problems.append(f"the last run exited {final.returncode}: {err[-300:]}")
    report.problems += output_exactly_once(out, inputs) + [
        f"process {pid} left" for pid in processes_left(tag)
    ]
    return report


def _reached(out: Path, point: int, run: subprocess.Popen[str]) -> Callable[[], bool]:
    return lambda: line_count(out) >= point or run.poll() is not None


def _after_stop(out: Path, tag: str, fault: Fault, code: int) -> list[str]:
    problems = [f"process {pid} outlived its run" for pid in processes_left(tag)]
    expected = {-signal.SIGKILL if fault is Fault.RUN_SIGKILL else ExitCode.INTERRUPTED, 0}
    if code not in expected:
        problems.append(f"{fault.value}: the run exited {code}")
    if not out.exists():
        return problems
    data = out.read_bytes()
    whole = data if data.endswith(b"\n") or not data else data[: data.rfind(b"\n") + 1]
    if fault is Fault.RUN_SIGTERM and whole != data:
        problems.append("SIGTERM left a torn record")
    scratch = out.with_suffix(".whole")
    scratch.write_bytes(whole)
    parsed, unreadable = records(scratch)
    scratch.unlink()
    paths = Counter(str(r["path"]) for r in parsed)
    twice = [p for p, n in paths.items() if n > 1]
    return problems + unreadable + [f"{p} recorded twice" for p in twice]


def file_size_limit(limit_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn`` that limits the size of any file the run writes (a disk that fills)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


def recorded_paths(out: Path, fmt: str) -> list[str]:
    """Every record's path, one per record, in any output format."""
    if fmt == "sqlite":
        with sqlite3.connect(out) as db:
            return [path_from_sql(path) for (path,) in db.execute("SELECT path FROM results")]
    parsed, problems = records(out / RECORDS_NAME if fmt == "txt" else out)
    assert problems == [], problems
    return [str(r["path"]) for r in parsed]
