"""The published figures: JSON results (with the machine they ran on) and PNG plots."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def machine() -> dict[str, Any]:
    """Where and when the figures were taken, and how busy the machine was."""
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **data}, indent=1) + "\n")


def caption(data: dict[str, Any]) -> str:
    """The run a figure came from, in one line: command, date, machine."""
    machine = data["machine"]
    return (
        f"{data['command']} | {machine['date_utc']} UTC | {machine['cores']} cores, "
        f"Python {machine['python']}"
    )


def _finish(figure: Any, path: Path, text: str) -> None:
    figure.text(0.01, 0.005, text, fontsize="x-small", color="dimgray")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_supervisor(path: Path, data: dict[str, Any]) -> None:
    """The supervisor's RSS, descriptors and threads against jobs done, one line a phase;
    every axis from zero, so a change of a megabyte looks like one."""
    figure, axes = plt.subplots(3, 1, figsize=(8, 8.5), sharex=True)
    for phase in data["phases"]:
        rows = phase["supervisor_samples"]
        done = [r[0] for r in rows]
        for axis, column in zip(axes, (1, 2, 3), strict=True):
            axis.plot(done, [r[column] for r in rows], label=phase["phase"])
    labels = ("supervisor RSS (MB)", "open file descriptors", "threads")
    for axis, label in zip(axes, labels, strict=True):
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0, top=axis.get_ylim()[1] * 1.1)
        axis.set_xlim(left=0)
        axis.grid(alpha=0.3)
    axes[0].set_title("The supervisor process during the soak (fake engine, recycling every 50)")
    axes[0].legend()
    axes[-1].set_xlabel("jobs done in the phase")
    _finish(figure, path, caption(data))


def plot_rss_timeline(path: Path, data: dict[str, Any], engine: str) -> None:
    """Total RSS of the pool (supervisor and workers) and the largest worker over time,
    from zero, with the per-worker soft limit."""
    timeline = data["rss_timeline"]
    limit_mb = data["soak"]["soft_limit_mb"]
    figure, axis = plt.subplots(figsize=(9, 4.8))
    seconds = [t for t, _, _ in timeline]
    axis.plot(
        seconds, [total for _, total, _ in timeline], label="total RSS (supervisor + workers)"
    )
    axis.plot(seconds, [largest for _, _, largest in timeline], label="largest worker")
    if limit_mb is not None:
        label = f"per-worker soft limit (max_rss_mb) {limit_mb:g} MB"
        axis.axhline(limit_mb, color="red", linestyle="--", label=label)
    axis.set_xlabel("seconds since the soak started (s)")
    axis.set_ylabel("RSS (MB)")
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0)
    axis.set_title(f"Real-engine soak ({engine}): RSS over time")
    axis.grid(alpha=0.3)
    axis.legend()
    _finish(figure, path, caption(data))


def redraw(folder: Path) -> list[Path]:
    """Every plot, drawn again from the JSON results in ``folder`` (no run needed)."""
    drawn = []
    soak = folder / "soak.json"
    if soak.exists():
        plot_supervisor(folder / "soak-supervisor.png", json.loads(soak.read_text()))
        drawn.append(folder / "soak-supervisor.png")
    for engine in ("aspose", "tesseract"):
        path = folder / f"{engine}.json"
        if path.exists():
            plot_rss_timeline(folder / f"{engine}-rss.png", json.loads(path.read_text()), engine)
            drawn.append(folder / f"{engine}-rss.png")
    return drawn


def write_markdown(folder: Path) -> str:
    """``results.md`` in ``folder``, from whichever of the JSON results are there (the
    README's Reliability section quotes it)."""
    parts = []
    renders = (
        ("soak", _soak_md),
        ("run-chaos", _run_chaos_md),
        ("aspose", _real_engine_md),
        ("tesseract", _real_engine_md),
    )
    for name, render in renders:
        path = folder / f"{name}.json"
        if path.exists():
            data = json.loads(path.read_text())
            machine = data["machine"]
            parts.append(
                f"`{data['command']}` ({machine['date_utc']} UTC, {machine['cores']} cores, "
                f"load average {machine['load_average_at_end'][2]} at the end):\n\n" + render(data)
            )
    text = "\n\n".join(parts) + "\n"
    (folder / "results.md").write_text(text)
    return text


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n:,}" for key, n in counts.items()) or "none"


def _ms(timing: dict[str, float] | None) -> str:
    return "-" if timing is None else f"{timing['p50']:.0f} / {timing['p95']:.0f}"


def _soak_md(data: dict[str, Any]) -> str:
    """One column a phase, one row a figure."""
    phases = data["phases"]
    rows: list[list[Any]] = []

    def row(label: str, cell: Any) -> None:
        rows.append([label, *(cell(phase) for phase in phases)])

    row("jobs", lambda p: f"{p['jobs']:,}")
    row("jobs/s", lambda p: p["jobs_per_s"])
    row("worker faults injected", lambda p: _counts(p["faults_injected"]))
    row("poison inputs", lambda p: _counts(p["poison_inputs"]))
    row("ok / failed / unknown", lambda p: _outcomes(p["operations"]))
    row("failed, by error", lambda p: _counts(p["operations"]["failed_by_type"]))
    row(
        "lost / duplicated",
        lambda p: f"{p['operations']['lost']} / {p['operations']['duplicated']}",
    )
    row(
        "running at an outside SIGKILL, then",
        lambda p: _counts(p["operations"]["in_flight_at_an_outside_kill"]),
    )
    row("attempts per job", lambda p: _counts(p["operations"]["attempts_histogram"]))
    row("worker exits", lambda p: _counts(p["worker_exits"]))
    row("SIGSTOPped workers the pool never ended", lambda p: p["sigstopped_workers_never_ended"])
    row(
        "kill to the next warm worker, p50 / p95 ms",
        lambda p: _ms(p["kills"]["kill_to_next_warm_worker_ms"]),
    )
    row("a warm spare there at a kill", lambda p: _spare(p["kills"]))
    for name, label in (("rss_mb", "RSS MB"), ("fds", "fds"), ("threads", "threads")):
        row(
            f"supervisor {label} per 10k jobs (slope)",
            lambda p, n=name: p["supervisor_slopes_per_10k_jobs"][n],
        )
    row("invariants broken", lambda p: len(p["problems"]))
    return _table(["", *(phase["phase"] for phase in phases)], rows)


def _outcomes(operations: dict[str, Any]) -> str:
    return f"{operations['ok']:,} / {operations['failed']:,} / {operations['unknown']:,}"


def _spare(kills: dict[str, Any]) -> str:
    if kills["spare_hit_rate"] is None:
        return "-"
    return (
        f"{kills['spare_warm_at_kill']} of {kills['active_worker_kills']} kills of active workers"
    )


def _run_chaos_md(data: dict[str, Any]) -> str:
    return _table(
        [
            "inputs",
            "runs",
            "stopped by",
            "exit codes",
            "records cut short (unknown, redone)",
            "invariants broken",
        ],
        [
            [
                data["inputs"],
                data["runs"],
                _counts(data["kills"]),
                _counts(data["exit_codes"]),
                data["torn_records_unknown_then_redone"],
                len(data["problems"]),
            ]
        ],
    )


def _real_engine_md(data: dict[str, Any]) -> str:
    soak, fuzz = data["soak"], data["fuzz"]
    peaks = f"{soak['worker_rss_after_job_max_mb']:.0f} / {soak['worker_rss_sampled_max_mb']:.0f}"
    soak_table = _table(
        [
            "images (distinct)",
            "images/s",
            "ok",
            "text as the engine called directly",
            "worker exits",
            "worker RSS max: after a job / sampled",
            "limits soft / hard",
            "total RSS max",
            "invariants broken",
        ],
        [
            [
                f"{soak['images']} ({soak['distinct_images']})",
                soak["images_per_s"],
                soak["ok"],
                soak["text_same_as_direct_engine"],
                _counts(soak["worker_exits"]),
                f"{peaks} MB",
                f"{soak['soft_limit_mb']:.0f} / {soak['hard_limit_mb']:.0f} MB",
                f"{soak['total_rss_max_mb']:.0f} MB",
                len(soak["problems"]),
            ]
        ],
    )
    fuzz_table = _table(
        ["damaged scans", "outcomes", "worker exits", "slowest job", "invariants broken"],
        [
            [
                fuzz["mutated_inputs"],
                _counts(fuzz["outcomes"]),
                _counts(fuzz["worker_exits"]),
                f"{fuzz['slowest_job_s']} s",
                len(fuzz["problems"]),
            ]
        ],
    )
    return soak_table + "\n\n" + fuzz_table
