"""The tesseract engine through the pool: the text of the engine called directly across
recycles, a worker crash in the middle of a page costing only a retry, and a supervisor
that never loads libtesseract."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from ocrpool import ExitCause, OcrPool, WorkerCrashed, WorkerState
from ocrpool.engines.tesseract.engine import TesseractEngine

pytestmark = pytest.mark.tesseract

REPO = Path(__file__).resolve().parent.parent
SCANS = [
    REPO / "examples" / "images" / "phototest.tif",
    REPO / "examples" / "images" / "eurotext.tif",
    REPO / "tests" / "data" / "HelloGoogle.tif",
]
_SUPERVISOR = """
import json, os, sys
from ocrpool import OcrPool
if __name__ == "__main__":
    with OcrPool(workers=1, spares=0, engine="tesseract") as pool:
        text = pool.recognize(sys.argv[1]).text
    maps = open(f"/proc/{os.getpid()}/maps").read()
    print(json.dumps({"text": text, "modules": sorted(m for m in sys.modules
        if m.split(".")[0] in ("tesserocr", "PIL", "pypdfium2")),
        "libtesseract": "libtesseract" in maps}))
"""


def direct_texts(paths: list[Path]) -> list[str]:
    engine = TesseractEngine()
    engine.start()
    try:
        return [engine.recognize(str(path)).text for path in paths]
    finally:
        engine.close()


def test_workers_recycled_every_two_jobs_give_the_direct_engines_text() -> None:
    paths = SCANS * 3
    with OcrPool(
        workers=2, spares=1, max_jobs_per_worker=2, recycle_jitter=0.0, engine="tesseract"
    ) as pool:
        results = list(pool.imap(str(path) for path in paths))
        exits = pool.stats().exits
    assert [r.text for r in results] == direct_texts(paths)
    assert all(len(r.attempts) == 1 for r in results)
    assert exits.get(ExitCause.MAX_JOBS, 0) >= 3
    assert all(r.rss_mb is not None and 30 < r.rss_mb < 400 for r in results)


def test_the_supervisor_never_loads_tesserocr(tmp_path: Path) -> None:
    script = tmp_path / "supervisor.py"
    script.write_text(_SUPERVISOR)
    done = subprocess.run(
        [sys.executable, str(script), str(SCANS[2])],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO,
    )
    report = json.loads(done.stdout)
    assert report == {"text": "Hello Google", "modules": [], "libtesseract": False}


def test_a_worker_crashing_mid_page_costs_a_retry_and_the_text_is_the_same(
    tmp_path: Path,
) -> None:
    page = Image.open(SCANS[0]).convert("L")
    big = Image.new("L", (page.width * 3, page.height * 3), 255)
    for row in range(3):
        for column in range(3):
            big.paste(page, (column * page.width, row * page.height))
    path = tmp_path / "big.png"
    big.save(path, dpi=(200, 200))
    with OcrPool(workers=1, spares=1, retries=1, engine="tesseract") as pool:
        future = pool.submit(str(path))
        worker = psutil.Process(_busy_worker(pool))
        reading = worker.cpu_times().user
        while worker.cpu_times().user < reading + 0.3:  # inside Tesseract, mid-page
            assert not future.done(), "the page was read before the worker could be hit"
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGSEGV)
        result = future.result(timeout=120)
        exits = pool.stats().exits
    assert result.ok, result.error
    crashed, retried = result.attempts
    assert crashed.worker_pid == worker.pid and crashed.outcome == WorkerCrashed.__name__
    assert "SIGSEGV" in crashed.message and retried.outcome == "ok"
    assert exits.get(ExitCause.CRASH) == 1
    assert result.text == direct_texts([path])[0]
    assert result.text.count("This is a lot of 12 point text") == 9


def _busy_worker(pool: OcrPool) -> int:
    deadline = time.monotonic() + 60
    while True:
        busy = [w.pid for w in pool.stats().workers if w.state is WorkerState.BUSY]
        if busy:
            return busy[0]
        assert time.monotonic() < deadline, "no worker took the job"
        time.sleep(0.01)


def test_a_split_document_reads_as_its_pages_read_whole(tmp_path: Path) -> None:
    """Page jobs (issue 20) with Tesseract: a 6-page TIFF split one page a job across two
    workers gives, page for page, the text of the engine reading the document whole."""
    frames = [Image.open(scan).convert("L") for scan in SCANS * 2]
    document = tmp_path / "six.tif"
    frames[0].save(document, save_all=True, append_images=frames[1:], compression="tiff_lzw")
    whole = TesseractEngine(warmup=False)
    whole.start()
    try:
        expected = [page.text for page in whole.recognize(str(document)).pages]
    finally:
        whole.close()
    with OcrPool(workers=2, spares=0, engine="tesseract", pages_per_job=1) as pool:
        result = pool.recognize(str(document))
        exits = pool.stats()
    assert [page.text for page in result.pages] == expected and len(expected) == 6
    assert len({attempt.worker_pid for attempt in result.attempts}) == 2
    assert exits.completed == 6  # six page jobs
