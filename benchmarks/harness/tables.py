"""Tables and files every benchmark writes: the Markdown header naming the run, Markdown
tables, and CSV files written and read back with their types."""

from __future__ import annotations

import csv
import dataclasses
import math
import time
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.harness.machine import Machine, load_average, this_machine

D = TypeVar("D")


@dataclass(frozen=True)
class Header:
    """How, when and where the numbers were taken: the Markdown above a table, and the
    caption of its plots."""

    title: str
    command: str
    started_utc: str
    duration_s: float
    machine: Machine
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    setup: tuple[str, ...]
    """Lines about the run itself: engine, options, inputs, workers, limits."""

    def markdown(self) -> list[str]:
        lines = [
            f"# {self.title}",
            "",
            f"`{self.command}`, started {self.started_utc}, took {self.duration_s / 60:.1f} min.",
            "",
        ]
        lines += [f"- {line}" for line in self.machine.describe()]
        lines.append(
            "- load average (1/5/15 min): at start "
            + "/".join(f"{v:.2f}" for v in self.load_start)
            + ", at end "
            + "/".join(f"{v:.2f}" for v in self.load_end)
        )
        lines += [f"- {line}" for line in self.setup]
        return lines

    def caption(self) -> str:
        """The run in one line, for a plot: command, date, machine."""
        return (
            f"{self.command} | {self.started_utc} | {self.machine.cpu_model}, "
            f"{self.machine.cores} cores"
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Header:
        return cls(
            **{
                **data,
                "machine": Machine(**data["machine"]),
                "load_start": tuple(data["load_start"]),
                "load_end": tuple(data["load_end"]),
                "setup": tuple(data["setup"]),
            }
        )


class RunClock:
    """When a benchmark began and how busy the machine was then: its ``Header`` at the end."""

    def __init__(self) -> None:
        self.started_utc = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.load_start = load_average()
        self.started = time.monotonic()

    def header(self, title: str, command: str, setup: Sequence[str]) -> Header:
        return Header(
            title=title,
            command=command,
            started_utc=self.started_utc,
            duration_s=time.monotonic() - self.started,
            machine=this_machine(),
            load_start=self.load_start,
            load_end=load_average(),
            setup=tuple(setup),
        )


def cell(value: Any, decimals: int = 2) -> str:
    """A value as the tables show it: ``-`` for a missing measure."""
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{decimals}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows as CSV, columns in the rows' order; a missing measure (``nan``, ``None``) is an
    empty cell; no rows, an empty file."""
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    key: ""
                    if value is None or (isinstance(value, float) and math.isnan(value))
                    else value
                    for key, value in row.items()
                }
            )


def read_csv(path: Path, kind: type[D]) -> list[D]:
    """The rows of a CSV that ``write_csv`` wrote from dataclasses ``kind``, typed again:
    an empty cell is ``nan`` for a float, ``None`` for an optional field."""
    types = typing.get_type_hints(kind)
    with path.open(newline="") as handle:
        return [
            kind(**{name: _typed(types[name], text) for name, text in row.items()})
            for row in csv.DictReader(handle)
        ]


def _typed(kind: Any, text: str) -> Any:
    if kind is float:
        return float(text) if text else math.nan
    if kind is int:
        return int(text)
    if kind is bool or kind == bool | None:
        return {"True": True, "False": False}.get(text)
    return text
