"""The engine tuning study's summaries, verdicts and files (``results.md``, ``*.csv``).

A setting is judged by its CPU over a worker's life: CPU-s per image plus its warm-up
spread over the jobs a worker serves before it is recycled, compared round by round with
the untuned engine. It is a candidate only if that is lower in every round, by at least
``MIN_GAIN`` at the median, with the same text on every image and no more than
``MAX_RSS_GROWTH`` more memory; a setting that changes text is reported, never adopted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.method import by_round, median
from benchmarks.harness.tables import Header, cell, markdown_table, write_csv
from benchmarks.studies.engine_tuning import (
    BASELINE,
    LIFETIME,
    SHORT,
    TIMED,
    Group,
    Plan,
    Setting,
    Trial,
    ground_truth,
)
from benchmarks.studies.recall import Recall, complete_words, pooled, recall, words
from ocrpool.pool.config import PoolConfig

LIFE_JOBS = PoolConfig().max_jobs_per_worker or 50
"""Jobs a worker serves before it is recycled (the pool's default): its warm-up is spread
over them."""
MIN_GAIN = 0.02
MAX_RSS_GROWTH = 0.10
NAN = float("nan")


def life_cpu_s(trial: Trial) -> float:
    """CPU-s per image over a worker's life: the image's own, plus a share of the warm-up."""
    return trial.cpu_s_per_image + trial.warmup_cpu_s / LIFE_JOBS


@dataclass(frozen=True)
class Summary:
    setting: Setting
    rounds_cpu_s: tuple[float, ...]
    """CPU-s per image, round by round (the median of the round's batches)."""
    changes: tuple[float, ...]
    """Life CPU-s per image against the untuned engine of the same batch, round by round."""
    cpu_s_per_image: float
    s_per_image: float
    warmup_cpu_s: float
    warmup_s: float
    rss_mb: float
    rss_slope_mb_per_job: float
    threads: float
    vm_gb: float
    text_differs: tuple[str, ...] | None
    """Images whose text is not the untuned engine's (``None``: no text was compared)."""
    recall: Recall
    words: int
    """Words returned over every check image."""
    error: str

    @property
    def change(self) -> float:
        return median(self.changes)


def _paired(trials: Sequence[Trial], baseline: Sequence[Trial]) -> tuple[float, ...]:
    """Each trial's life CPU against the untuned workers of its batch (their median),
    round by round."""
    batches = {(t.round_index, t.batch) for t in baseline}
    untuned = {
        key: median([life_cpu_s(t) for t in baseline if (t.round_index, t.batch) == key])
        for key in batches
    }
    return by_round(
        [
            (t.round_index, life_cpu_s(t) / untuned[(t.round_index, t.batch)] - 1)
            for t in trials
            if (t.round_index, t.batch) in untuned
        ]
    )


def summarise(trials: Sequence[Trial], settings: Sequence[Setting], phase: str) -> list[Summary]:
    """One summary per setting of ``phase``, medians over its rounds."""
    mine = [t for t in trials if t.phase == phase]
    baseline = [t for t in mine if t.setting == BASELINE.name and not t.error]
    reference = next((t.texts for t in baseline if t.texts), {})
    truths = ground_truth(list(reference))
    windows = {name: complete_words(" ".join(reference[name])) for name in truths}
    summaries = []
    for setting in settings:
        runs = [t for t in mine if t.setting == setting.name]
        if not runs:
            continue
        ok = [t for t in runs if not t.error]
        texts = next((t.texts for t in ok if t.texts), {})

        def middle(name: str, ok: list[Trial] = ok) -> float:
            return median([getattr(t, name) for t in ok])

        summaries.append(
            Summary(
                setting=setting,
                rounds_cpu_s=by_round([(t.round_index, t.cpu_s_per_image) for t in ok]),
                changes=_paired(ok, baseline),
                cpu_s_per_image=middle("cpu_s_per_image"),
                s_per_image=middle("s_per_image"),
                warmup_cpu_s=middle("warmup_cpu_s"),
                warmup_s=middle("warmup_s"),
                rss_mb=middle("rss_mb"),
                rss_slope_mb_per_job=middle("rss_slope_mb_per_job"),
                threads=middle("threads"),
                vm_gb=middle("vm_gb"),
                text_differs=(
                    tuple(n for n in reference if texts.get(n) != reference[n])
                    if reference
                    else None
                ),
                recall=pooled(
                    recall(" ".join(texts.get(n, ())), truths[n], windows[n]) for n in truths
                ),
                words=sum(len(words(" ".join(pages))) for pages in texts.values()),
                error="; ".join(sorted({t.error for t in runs if t.error})),
            )
        )
    return summaries


def verdict(summary: Summary, baseline: Summary) -> str:
    """Why a setting is, or is not, a candidate for the engine's defaults."""
    if summary.error:
        return f"failed: {summary.error}"
    if summary.setting.group is Group.BASELINE:
        return "reference"
    compared, rounds = len(summary.changes), len(baseline.rounds_cpu_s)
    if compared < rounds:
        return f"incomplete: compared in {compared} of {rounds} rounds"
    if summary.text_differs:
        return f"changes the text of {len(summary.text_differs)} image(s): not adopted"
    rss_growth = summary.rss_mb / baseline.rss_mb - 1
    if not summary.changes or max(summary.changes) >= 0:
        return "costs more CPU" if summary.change > MIN_GAIN else "no gain in every round"
    if summary.change > -MIN_GAIN:
        return f"lower in every round, by under {MIN_GAIN:.0%}"
    if rss_growth > MAX_RSS_GROWTH:
        return f"saves CPU, but RSS {rss_growth:+.0%}"
    return "adopted" if summary.setting.group is Group.ADOPTED else "candidate"


_COLUMNS = (
    "setting",
    "group",
    "CPU s/image (rounds)",
    "life CPU vs untuned (rounds)",
    "s/image",
    "warm-up CPU s",
    "warm-up s",
    "RSS MB",
    "RSS MB/job",
    "threads",
    "VM GB",
    "text vs untuned",
    "word recall",
    "words",
    "verdict",
)


def _row(summary: Summary, baseline: Summary) -> list[str]:
    differs = summary.text_differs
    return [
        f"`{summary.setting.name}`",
        summary.setting.group.value,
        " / ".join(f"{value:.3f}" for value in summary.rounds_cpu_s) or "-",
        " / ".join(f"{change:+.1%}" for change in summary.changes) or "-",
        cell(summary.s_per_image, 2),
        cell(summary.warmup_cpu_s, 2),
        cell(summary.warmup_s, 2),
        cell(summary.rss_mb, 0),
        cell(summary.rss_slope_mb_per_job, 2),
        cell(summary.threads, 0),
        cell(summary.vm_gb, 1),
        "-" if differs is None else ("differs: " + ", ".join(differs)) if differs else "same",
        (
            f"{summary.recall.share:.3f} ({summary.recall.found}/{summary.recall.window})"
            if summary.recall.window
            else "-"
        ),
        "-" if differs is None else str(summary.words),
        verdict(summary, baseline),
    ]


def _csv_row(summary: Summary, baseline: Summary) -> dict[str, object]:
    return {
        "setting": summary.setting.name,
        "group": summary.setting.group.value,
        "cpu_s_per_image": summary.cpu_s_per_image,
        "life_cpu_change": summary.change,
        "s_per_image": summary.s_per_image,
        "warmup_cpu_s": summary.warmup_cpu_s,
        "warmup_s": summary.warmup_s,
        "rss_mb": summary.rss_mb,
        "rss_slope_mb_per_job": summary.rss_slope_mb_per_job,
        "threads": summary.threads,
        "vm_gb": summary.vm_gb,
        "text_differs": "" if summary.text_differs is None else " ".join(summary.text_differs),
        "word_recall": summary.recall.share,
        "words": summary.words,
        "verdict": verdict(summary, baseline),
        "meaning": summary.setting.meaning,
    }


def _per_core(summaries: Sequence[Summary]) -> list[str]:
    """Images/s per core of one-thread engines against two-thread ones."""
    one = summaries[0]
    two = next((s for s in summaries if s.setting.engine_options.get("threads") == 2), None)
    if two is None or math.isnan(two.s_per_image):
        return []
    return [
        f"Threads against workers: a one-thread engine uses {one.cpu_s_per_image:.2f} CPU-s "
        f"per image, so one engine per core gives {1 / one.cpu_s_per_image:.2f} images/s per "
        f"core; a two-thread engine takes {two.s_per_image:.2f} s and {two.cpu_s_per_image:.2f} "
        f"CPU-s per image, so one per two cores gives {1 / (2 * two.s_per_image):.2f} images/s "
        f"per core at most.",
    ]


def study_markdown(header: Header, plan: Plan, trials: Sequence[Trial]) -> str:
    short = summarise(trials, plan.settings, SHORT)
    baseline = short[0]
    lines = [*header.markdown(), "", "## Settings", ""]
    lines += markdown_table(_COLUMNS, [_row(s, baseline) for s in short])
    lines += ["", *(f"- `{s.setting.name}`: {s.setting.meaning}" for s in short)]
    lifetime = summarise(trials, plan.settings, LIFETIME)
    if lifetime:
        lines += [
            "",
            f"## Over a worker's life ({plan.lifetime_replicas} workers of each side by "
            f"side, {plan.lifetime_jobs} timed jobs after {plan.settle} settling ones)",
            "",
        ]
        lines += markdown_table(_COLUMNS, [_row(s, lifetime[0]) for s in lifetime])
    lines += ["", "## How it is measured", ""]
    lines += [f"- {note}" for note in (*_NOTES, *_per_core(short))]
    return "\n".join(lines) + "\n"


_NOTES = (
    "Each setting runs in a pool worker of its own (one-worker `OcrPool`, never recycled). "
    "Workers of a batch, led by an untuned one, take turns job by job, so they share the "
    "same moments of the machine's load. Warm-up CPU is the worker's from its fork to "
    "ready (runtime, models, the built-in warm-up image); warm-up seconds the pool's start. "
    "The timed jobs cycle through the shipped images "
    + ", ".join(f"`{name}`" for name in TIMED)
    + "; CPU is the worker process's (every thread), read when its timed jobs begin and "
    "end; `s/image` is "
    "the worker's own timing of the job.",
    f"`life CPU vs untuned` compares CPU-s per image plus warm-up CPU / {LIFE_JOBS} (the "
    "jobs a worker serves before it is recycled) with the untuned worker of the same batch; "
    "`CPU s/image (rounds)` and the changes are each round's median over its batches.",
    f"A candidate is lower in every round and by at least {MIN_GAIN:.0%} at the median, "
    f"with the same text on every shipped and test image and RSS at most "
    f"{MAX_RSS_GROWTH:.0%} higher.",
    "`threads` and `VM GB` are the runtime's own view after the timed jobs: they show that "
    "a setting given in the environment took effect (server GC reserves far more address "
    "space; without tiered compilation .NET starts fewer threads).",
    "Text and word recall come from the first round, in which every worker recognises "
    "every shipped and test image once before the timed jobs. Evaluation mode returns "
    "only the first part of each page, so recall is counted over the ground truth's "
    "first N words, N being the complete words the untuned engine returned for that "
    "image (`recall found/window`, images with ground truth in `tests/data/*.gt.txt`); "
    "`words` counts the words returned over every image.",
)


def write_study(out: Path, header: Header, plan: Plan, trials: Sequence[Trial]) -> list[Path]:
    """``results.md``, ``results.csv`` (one row per setting and phase), ``runs.csv`` (every
    trial) and ``texts.csv`` (every text of the first round) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for phase in (SHORT, LIFETIME):
        summaries = summarise(trials, plan.settings, phase)
        rows += [{"phase": phase, **_csv_row(s, summaries[0])} for s in summaries]
    write_csv(out / "results.csv", rows)
    write_csv(
        out / "runs.csv",
        [{k: v for k, v in dataclasses.asdict(t).items() if k != "texts"} for t in trials],
    )
    write_csv(
        out / "texts.csv",
        [
            {"setting": t.setting, "image": image, "page": number, "text": text}
            for t in trials
            if t.texts
            for image, pages in t.texts.items()
            for number, text in enumerate(pages, start=1)
        ],
    )
    (out / "results.md").write_text(study_markdown(header, plan, trials))
    return [out / name for name in ("results.md", "results.csv", "runs.csv", "texts.csv")]
