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


def plot_supervisor(path: Path, phases: list[dict[str, Any]]) -> None:
    """The supervisor's RSS, descriptors and threads against jobs done, one line a phase."""
    figure, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for phase in phases:
        rows = phase["supervisor_samples"]
        done = [r[0] for r in rows]
        for axis, column in zip(axes, (1, 2, 3), strict=True):
            axis.plot(done, [r[column] for r in rows], label=phase["phase"])
    for axis, label in zip(axes, ("RSS (MB)", "open fds", "threads"), strict=True):
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_title("supervisor process during the soak (fake engine, recycling every 50)")
    axes[0].legend()
    axes[-1].set_xlabel("jobs done in the phase")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_rss_timeline(
    path: Path, timeline: list[tuple[float, float, float]], limit_mb: float | None
) -> None:
    """Total RSS of the pool (supervisor and workers) and the largest worker over time."""
    figure, axis = plt.subplots(figsize=(9, 4.5))
    seconds = [t for t, _, _ in timeline]
    axis.plot(
        seconds, [total for _, total, _ in timeline], label="total RSS (supervisor + workers)"
    )
    axis.plot(seconds, [largest for _, _, largest in timeline], label="largest worker")
    if limit_mb is not None:
        axis.axhline(limit_mb, color="red", linestyle="--", label=f"soft limit {limit_mb:g} MB")
    axis.set_xlabel("seconds")
    axis.set_ylabel("MB")
    axis.set_title("real-Aspose soak: RSS over time")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
