"""``python -m benchmarks options``: what each recognition option costs per page.

One child process loads Aspose as a worker does (one thread) and, for each image, times
each step the engine runs for an option with the same code the engine uses: plain
recognition, recognition with pages turned upright (``rotate_pages``), the spell-check
(``spellcheck``) and each export format (``exports``). A step's first use (models,
dictionaries, fonts) is timed apart on the warm-up image: a worker pays it once, in its
warm-up. Wall and CPU time are medians over the rounds; CPU time (of the whole child)
is the steadier measure on a shared machine.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness.tables import RunClock, markdown_table, write_csv
from ocrpool.engines.aspose.child import run_in_child
from ocrpool.exports import ExportFormat
from ocrpool.formats import Format, sniff_file

RECOGNITION = "recognition"
ROTATE = "rotate-pages"
UPRIGHT = "recognition, pages turned upright"
SPELLCHECK = "spellcheck"
EXPORT = "export "
DEFAULT_ROUNDS = 3
DEFAULT_BUDGET_S = 240.0
"""No round starts after this long (the first always runs)."""


@dataclass(frozen=True)
class Timing:
    """One step on one image: the median over rounds."""

    image: str
    pages: int
    step: str
    wall_s: float
    cpu_s: float


@dataclass(frozen=True)
class Measured:
    timings: tuple[Timing, ...]
    first_use_s: dict[str, float]
    """Wall seconds of each step's first call, on the warm-up image."""
    rounds: int


@dataclass(frozen=True)
class Row:
    """One option's cost per page, over all images."""

    option: str
    wall_ms_per_page: float
    cpu_ms_per_page: float
    share_of_recognition: float
    first_use_s: float


def time_options(paths: Sequence[str], rounds: int, budget_s: float) -> Measured:
    """Runs in the child: every step on every image, ``rounds`` times (within budget)."""
    from ocrpool.engines.aspose import exports, orientation, spelling
    from ocrpool.engines.aspose.engine import to_recognition
    from ocrpool.engines.aspose.runtime import prepare_process
    from ocrpool.engines.inputs import WARMUP_IMAGE

    prepare_process()
    import aspose.ocr as ocr
    from aspose.ocr.spellchecker import SpellCheckLanguage

    ocr.Logging.set_file_system(False)
    ocr.OnnxRuntimeSessionOptions.set_intra_op_num_threads(1)
    ocr.OnnxRuntimeSessionOptions.set_inter_op_num_threads(1)
    settings = ocr.RecognitionSettings()
    settings.threads_count = 1
    api = ocr.AsposeOcr()

    def steps(path: str) -> tuple[dict[str, Callable[[], Any]], int]:
        kind = sniff_file(path)
        multi_page = kind in (Format.TIFF, Format.PDF)
        input_type = getattr(ocr.InputType, kind.name if kind and multi_page else "SINGLE_IMAGE")
        ocr_input = ocr.OcrInput(input_type)
        ocr_input.add(path)
        output = api.recognize(ocr_input, settings)
        pages = to_recognition(output).pages
        table: dict[str, Callable[[], Any]] = {
            RECOGNITION: lambda: api.recognize(ocr_input, settings),
            UPRIGHT: lambda: orientation.recognize_upright(ocr, api, settings, input_type, path),
            SPELLCHECK: lambda: spelling.correct_pages(api, pages, SpellCheckLanguage.ENG, ""),
        }
        for fmt in ExportFormat:
            table[EXPORT + fmt.value] = functools.partial(
                exports.render, ocr, api, output, pages, (fmt,), path
            )
        return table, len(pages)

    first_use = {}
    for step, call in steps(str(WARMUP_IMAGE))[0].items():
        first_use[step] = _timed(call)[0]
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    page_counts = {}
    deadline = time.monotonic() + budget_s
    done = 0
    while done < rounds and (done == 0 or time.monotonic() < deadline):
        for path in paths:
            table, page_counts[path] = steps(path)
            for step, call in table.items():
                samples.setdefault((path, step), []).append(_timed(call))
        done += 1
    timings = tuple(
        Timing(
            Path(path).name,
            page_counts[path],
            step,
            statistics.median(wall for wall, _ in values),
            statistics.median(cpu for _, cpu in values),
        )
        for (path, step), values in samples.items()
    )
    return Measured(timings, first_use, done)


def _timed(call: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def rows(measured: Measured) -> list[Row]:
    """Cost per page of each option: its own step, or for ``rotate-pages`` what turning
    pages upright adds to recognition."""
    pages = sum({t.image: t.pages for t in measured.timings}.values())

    def per_page(step: str) -> tuple[float, float]:
        chosen = [t for t in measured.timings if t.step == step]
        return sum(t.wall_s for t in chosen) / pages, sum(t.cpu_s for t in chosen) / pages

    base_wall, base_cpu = per_page(RECOGNITION)
    upright_wall, upright_cpu = per_page(UPRIGHT)
    costs = {
        RECOGNITION: (base_wall, base_cpu),
        ROTATE: (upright_wall - base_wall, upright_cpu - base_cpu),
        SPELLCHECK: per_page(SPELLCHECK),
    }
    costs |= {EXPORT + fmt.value: per_page(EXPORT + fmt.value) for fmt in ExportFormat}
    first_use = dict(measured.first_use_s)
    first_use[ROTATE] = first_use.pop(UPRIGHT)
    return [
        Row(option, wall * 1000, cpu * 1000, cpu / base_cpu, first_use[option])
        for option, (wall, cpu) in costs.items()
    ]


def run(corpus: Sequence[Path], rounds: int, budget_s: float, out: Path, command: str) -> None:
    """Measure in a child, then write ``results.csv`` and ``results.md`` into ``out``."""
    started = RunClock()
    paths = [str(path) for path in corpus]
    measured: Measured = run_in_child(
        time_options, paths, rounds, budget_s, timeout=budget_s * 3 + 300
    )
    table = rows(measured)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(
        out / "results.csv",
        [
            {
                "option": row.option,
                "wall_ms_per_page": round(row.wall_ms_per_page, 1),
                "cpu_ms_per_page": round(row.cpu_ms_per_page, 1),
                "share_of_recognition_cpu": round(row.share_of_recognition, 3),
                "first_use_s": round(row.first_use_s, 2),
            }
            for row in table
        ],
    )
    images = {t.image: t.pages for t in measured.timings}
    header = started.header(
        "What each recognition option costs per page (Aspose)",
        command,
        (
            f"{sum(images.values())} pages in {len(images)} images: "
            + ", ".join(f"{name} ({n})" for name, n in images.items()),
            f"{measured.rounds} round(s); medians; one thread, as in a worker; "
            "evaluation mode (no license)",
        ),
    )
    lines = header.markdown()
    lines += ["", *_table(table), "", *_notes()]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(_table(table)))


def _table(table: Sequence[Row]) -> list[str]:
    return markdown_table(
        ["option", "wall ms/page", "CPU ms/page", "CPU vs recognition", "first use s (once)"],
        [
            [
                row.option,
                f"{row.wall_ms_per_page:.0f}",
                f"{row.cpu_ms_per_page:.0f}",
                f"{row.share_of_recognition:.0%}",
                f"{row.first_use_s:.2f}",
            ]
            for row in table
        ],
    )


def _notes() -> list[str]:
    return [
        f"`{ROTATE}` is what turning pages upright adds to `{RECOGNITION}` (measuring each "
        "page's angle, and recognising in runs of equal angle); the spell-check is one call "
        "per document; an export is rendered from the recognition already made. "
        "`first use` is paid once per worker, in its warm-up (recognition's own first use "
        "falls on the untimed recognition the other steps start from).",
    ]
