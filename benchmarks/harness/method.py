"""The method every comparison and study here shares, so their figures mean the same.

On a shared machine, load drifts while a benchmark runs. Every item (a scenario, an engine,
a setting) therefore runs once per round, the rounds in alternating order (``run_order``),
items side by side taking turns in a rotating order (``turn_order``); each figure is
reported round by round and as the median of its rounds (``by_round``, ``median``), never
as one lucky run. Items are chosen by name (``select``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

NAN = float("nan")
T = TypeVar("T")


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def select(
    items: tuple[N, ...], names: Sequence[str] | None, kind: str = "scenario"
) -> tuple[N, ...]:
    """The items named (in table order), or all; an unknown name is a ``ValueError``."""
    if not names:
        return items
    known = {item.name for item in items}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown {kind}(s) {unknown}: choose from {sorted(known)}")
    return tuple(item for item in items if item.name in names)


def run_order(items: tuple[T, ...], round_index: int) -> tuple[T, ...]:
    """Forward in even rounds, backward in odd ones, so drift in the machine's load does
    not favour the items that run first."""
    return items if round_index % 2 == 0 else items[::-1]


def turn_order(subjects: Sequence[T], turn: int) -> list[T]:
    """``subjects`` rotated by ``turn``: each takes every place in turn, and (with three or
    more) none goes last in one turn and first in the next."""
    start = turn % len(subjects) if subjects else 0
    return [*subjects[start:], *subjects[:start]]


def median(values: Iterable[float]) -> float:
    """The median of the values that are numbers; ``nan`` if there are none."""
    kept = [value for value in values if not math.isnan(value)]
    return statistics.median(kept) if kept else NAN


def by_round(values: Sequence[tuple[int, float]]) -> tuple[float, ...]:
    """The median value of each round, in round order."""
    rounds = sorted({index for index, _ in values})
    return tuple(median([v for index, v in values if index == r]) for r in rounds)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks; ``nan`` for no values."""
    if not values:
        return NAN
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def slope(points: Iterable[tuple[float, float]]) -> float:
    """Least-squares slope of y against x; ``nan`` with fewer than 3 points or constant x."""
    xs, ys = [], []
    for x, y in points:
        xs.append(x)
        ys.append(y)
    if len(xs) < 3 or len(set(xs)) < 2:
        return NAN
    return statistics.linear_regression(xs, ys).slope
