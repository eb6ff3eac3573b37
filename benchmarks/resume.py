"""What a stop mid-document costs on resume: ``python -m benchmarks.resume``.

ocrpool keeps no page ledger: ``ocrpool run`` records a split document once, after its
last page, so a run stopped mid-document redoes that document whole. This measures it on
the ``pages`` benchmark's corpus (the shipped scans as single pages, then one long
document of their pages): a full run for reference, then for each kill point a run
SIGKILLed once its progress line shows that many of the document's pages done, and the
rerun that resumes it. Per kill point: the pages finished before the kill (the last
progress line's count, so at least that many), the records the killed run left, the
rerun's wall time, and its page jobs (every one of the document's, plus the single pages
not recorded before the kill).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.pages import build_corpus

OCRPOOL = str(Path(sys.executable).parent / "ocrpool")
PROGRESS = re.compile(r"pages (\d+)/(\d+) ")
PROGRESS_INTERVAL_S = 0.2


@dataclass(frozen=True)
class Resume:
    kill_at: int
    """The page count the kill waited for."""
    pages_done: int
    """The document's pages the last progress line before the kill showed done."""
    records_kept: int
    resume_s: float
    page_jobs: int
    """Jobs the rerun ran: the document's page jobs and the single pages left to do."""


def _command(folder: Path, out: Path, engine: str, options: list[str], workers: int) -> list[str]:
    command = [OCRPOOL, "run", str(folder), "--out", str(out), "--engine", engine]
    command += ["--workers", str(workers), "--progress-interval", str(PROGRESS_INTERVAL_S)]
    for option in options:
        command += ["--engine-option", option]
    return command


def _finish(command: list[str]) -> float:
    """Run ``command`` to its end; its wall time."""
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def _kill_at(command: list[str], pages: int) -> int:
    """Start ``command`` and SIGKILL it once its progress shows ``pages`` of the document
    done (or when it ends first); the pages its last progress line showed done."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    done = 0
    for line in proc.stderr:
        found = PROGRESS.search(line)
        if found is not None:
            done = int(found[1])
            if done >= pages:
                break
    family = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(family, timeout=30)  # workers end by their parent-death signal
    return done


def _records(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def _jobs(records: list[dict[str, Any]]) -> int:
    return sum(len(record["attempts"]) for record in records)


def run(
    pages: int, kill_points: list[int], engine: str, options: list[str], workers: int
) -> tuple[float, int, list[Resume]]:
    """The full run's wall time and jobs, and one ``Resume`` per kill point."""
    with tempfile.TemporaryDirectory(prefix="ocrpool-resume-") as scratch:
        folder = Path(scratch) / "in"
        folder.mkdir()
        build_corpus(folder, pages)
        full_out = Path(scratch) / "full.jsonl"
        full_s = _finish(_command(folder, full_out, engine, options, workers))
        full_jobs = _jobs(_records(full_out))
        print(f"full run: {full_s:.2f} s, {full_jobs} jobs", flush=True)
        resumes = []
        for number, kill_at in enumerate(kill_points):
            out = Path(scratch) / f"killed-{number}.jsonl"
            command = _command(folder, out, engine, options, workers)
            done = _kill_at(command, kill_at)
            kept = _records(out)
            resume_s = _finish(command)
            again = _records(out)[len(kept) :]
            resumes.append(Resume(kill_at, done, len(kept), resume_s, _jobs(again)))
            print(_row(resumes[-1], full_s), flush=True)
        return full_s, full_jobs, resumes


def report(full_s: float, full_jobs: int, resumes: list[Resume], pages: int, command: str) -> str:
    lines = [
        f"`{command}`",
        "",
        f"Full run, no kill: {full_s:.2f} s, {full_jobs} jobs ({pages}-page document and "
        f"{full_jobs - pages} single pages).",
        "",
        "| killed when pages done | pages done at the kill | records kept | "
        "resume s | resume / full | jobs in the resume | pages redone |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(resume, full_s) for resume in resumes]
    return "\n".join(lines)


def _row(resume: Resume, full_s: float) -> str:
    return (
        f"| {resume.kill_at} | {resume.pages_done} | {resume.records_kept} | "
        f"{resume.resume_s:.2f} | {resume.resume_s / full_s:.2f} | {resume.page_jobs} | "
        f">= {resume.pages_done} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resume", description=__doc__)
    parser.add_argument("--engine", choices=("aspose", "tesseract", "fake"), default="aspose")
    parser.add_argument("--engine-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument(
        "--kill-at", default="1,10,20,30,39", help="pages done at each kill (default 1,10,20,30,39)"
    )
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "benchmarks.resume", *(argv or sys.argv[1:])])
    points = [int(point) for point in args.kill_at.split(",")]
    full_s, full_jobs, resumes = run(
        args.pages, points, args.engine, args.engine_option, args.workers
    )
    table = report(full_s, full_jobs, resumes, args.pages, command)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
