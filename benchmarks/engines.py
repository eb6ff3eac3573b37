"""``python -m benchmarks engines``: Tesseract and Aspose side by side on the same pages.

Each engine runs as a pool worker runs it (ocrpool's engine defaults, one thread), in a
throwaway process of its own per round, warm before it is timed; the rounds alternate
which engine goes first. Per engine: CPU-s per page (the process's CPU time around each
``recognize``), RSS once every page was read, and word recall against the ground truth
in ``tests/data`` (``<image>.gt.txt``): over the whole transcription, and over the
window of words Aspose's evaluation mode returned (its first complete words), the only
words on which the two can be compared while Aspose runs without a license.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.harness.method import run_order
from benchmarks.harness.tables import cell, markdown_table, write_csv
from benchmarks.studies.engine_tuning import ground_truth
from benchmarks.studies.recall import Recall, complete_words, pooled, recall, words
from ocrpool.engines.aspose.child import run_in_child

ENGINES = ("tesseract", "aspose")
DEFAULT_ROUNDS = 3
_CHILD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Reading:
    """One engine's pass over the images in one round."""

    engine: str
    round_index: int
    cpu_s: tuple[float, ...]
    """Per image."""
    pages: tuple[int, ...]
    texts: tuple[str, ...]
    rss_mb: float
    warmup_cpu_s: float


def read_all(engine_name: str, images: Sequence[str], round_index: int) -> Reading:
    """Runs in the child: start the engine warm, then time each image."""
    from ocrpool.engines import create_engine

    started = time.process_time()
    engine = create_engine(engine_name)
    engine.start()
    warmup = time.process_time() - started
    cpu, pages, texts = [], [], []
    try:
        for image in images:
            before = time.process_time()
            result = engine.recognize(image)
            cpu.append(time.process_time() - before)
            pages.append(len(result.pages))
            texts.append(result.text)
        rss = psutil.Process().memory_info().rss / 2**20
    finally:
        engine.close()
    return Reading(engine_name, round_index, tuple(cpu), tuple(pages), tuple(texts), rss, warmup)


def run(
    images: Sequence[Path], rounds: int, out: Path, command: str, log: Callable[[str], None]
) -> str:
    paths = [str(image) for image in images]
    readings: list[Reading] = []
    for round_index in range(rounds):
        for engine in run_order(ENGINES, round_index):
            reading = run_in_child(read_all, engine, paths, round_index, timeout=_CHILD_TIMEOUT_S)
            log(f"round {round_index + 1} {engine}: {sum(reading.cpu_s):.2f} CPU-s")
            readings.append(reading)
    return write(paths, readings, out, command)


def write(paths: Sequence[str], readings: Sequence[Reading], out: Path, command: str) -> str:
    truths = ground_truth(paths)
    names = [Path(path).name for path in paths]
    first = {r.engine: r for r in readings if r.round_index == 0}
    windows = {name: complete_words(first["aspose"].texts[names.index(name)]) for name in truths}
    rows: list[dict[str, Any]] = []
    for engine in ENGINES:
        mine = [r for r in readings if r.engine == engine]
        per_page = [sum(r.cpu_s) / sum(r.pages) for r in mine]
        texts = dict(zip(names, first[engine].texts, strict=True))
        whole = pooled(
            recall(texts[name], truth, len(words(truth))) for name, truth in truths.items()
        )
        window = pooled(recall(texts[name], truths[name], windows[name]) for name in truths)
        rows.append(
            {
                "engine": engine,
                "rounds": len(mine),
                "pages": sum(mine[0].pages),
                "cpu_s_per_page": statistics.median(per_page),
                "cpu_s_per_page_rounds": " / ".join(f"{value:.3f}" for value in per_page),
                "warmup_cpu_s": statistics.median(r.warmup_cpu_s for r in mine),
                "rss_mb": statistics.median(r.rss_mb for r in mine),
                "recall_whole": whole.share,
                "recall_whole_words": _words(whole),
                "recall_aspose_window": window.share,
                "recall_aspose_window_words": _words(window),
                "texts_same_every_round": len({r.texts for r in mine}) == 1,
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", rows)
    headers = [
        "engine",
        "CPU-s per page (median; rounds)",
        "warm-up CPU-s",
        "RSS MB",
        "word recall, whole ground truth",
        "word recall, Aspose's evaluation window",
        "same text every round",
    ]
    table = markdown_table(
        headers,
        [
            [
                row["engine"],
                f"{cell(row['cpu_s_per_page'], 3)} ({row['cpu_s_per_page_rounds']})",
                cell(row["warmup_cpu_s"], 2),
                cell(row["rss_mb"], 0),
                f"{cell(row['recall_whole'], 3)} ({row['recall_whole_words']})",
                f"{cell(row['recall_aspose_window'], 3)} ({row['recall_aspose_window_words']})",
                "yes" if row["texts_same_every_round"] else "no",
            ]
            for row in rows
        ],
    )
    pages = sum(first["tesseract"].pages)
    text = "\n".join(
        [
            "# Tesseract and Aspose on the same pages",
            "",
            f"`{command}`: {len(paths)} images ({pages} pages: "
            f"{', '.join(names)}), {len(readings) // len(ENGINES)} rounds, each engine warm "
            "in a process of its own with ocrpool's defaults; recall over "
            f"{', '.join(sorted(truths))} (ground truth in tests/data). Aspose runs in "
            "evaluation mode (no license): it returns only the first part of each page.",
            "",
            *table,
            "",
        ]
    )
    (out / "results.md").write_text(text)
    return text


def _words(found: Recall) -> str:
    return f"{found.found}/{found.window} words"
