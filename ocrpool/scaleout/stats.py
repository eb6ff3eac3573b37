"""What the Ray backend reports: each actor's state, and one ``PoolStats`` for them all.

The aggregate is built by a pure function from the actors' own ``PoolStats`` (the last
one each incarnation of an actor reported) and the driver's counts, so a test can check
it without a cluster.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ocrpool.stats import PoolState, PoolStats

ACTOR_LOST = "actor_lost"
"""The exit cause counted for an actor lost with its process or node (its workers went with
it). It sits beside the workers' ``ExitCause`` values in ``PoolStats.exits``."""


class ActorState(str, enum.Enum):
    STARTING = "starting"
    """Created; its local pool is warming up."""
    READY = "ready"
    RECOVERING = "recovering"
    """Lost; Ray is restarting it (``max_restarts``), nothing is sent to it meanwhile."""
    DEAD = "dead"
    """Lost for good: out of restarts, or its node is gone and nowhere else fits it."""
    CLOSED = "closed"


@dataclass(frozen=True)
class ActorInfo:
    """One actor, seen from the driver. ``pool`` is the last ``PoolStats`` its current
    incarnation reported (``None`` before its first answer)."""

    name: str
    state: ActorState
    node: str | None
    pid: int | None
    restarts: int
    in_flight: int
    pool: PoolStats | None


@dataclass(frozen=True)
class Snapshot:
    """An actor's pool stats, and their place among the ones its incarnation took."""

    taken: int
    stats: PoolStats


class Reports:
    """The last stats of every actor incarnation heard from, by (name, pid). An actor
    answers its calls from several threads, so their replies reach the driver in any
    order: a snapshot older than the one kept is dropped, or exits, retries and
    quarantines would go backwards."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, int | None], Snapshot] = {}

    def keep(self, key: tuple[str, int | None], snapshot: Snapshot) -> None:
        kept = self._latest.get(key)
        if kept is None or snapshot.taken > kept.taken:
            self._latest[key] = snapshot

    def get(self, key: tuple[str, int | None]) -> PoolStats | None:
        kept = self._latest.get(key)
        return None if kept is None else kept.stats

    def all(self) -> list[PoolStats]:
        return [snapshot.stats for snapshot in self._latest.values()]


@dataclass(frozen=True)
class DriverCounts:
    """What only the driver knows: jobs as its callers see them, re-dispatches after a
    lost actor, actors lost, and inputs failed because their actor was lost too often."""

    state: PoolState
    submitted: int
    completed: int
    failed: int
    queued: int
    redispatched: int
    actors_lost: int
    lost_inputs: tuple[str, ...]


def aggregate(
    driver: DriverCounts, reports: Iterable[PoolStats], live: Iterable[PoolStats]
) -> PoolStats:
    """One ``PoolStats`` for the whole cluster.

    ``reports`` holds the last stats of every actor incarnation the driver has heard
    from, gone ones included, so exits, retries and quarantines never go backwards when
    Ray replaces an actor; ``live`` the reports of the incarnations serving now, whose
    workers and queues are current. Jobs are counted by the driver: an input run twice
    after a lost actor is still one job to its caller.
    """
    exits: Counter[str] = Counter()
    if driver.actors_lost:
        exits[ACTOR_LOST] = driver.actors_lost
    retries = driver.redispatched
    quarantined = list(driver.lost_inputs)
    for stats in reports:
        exits.update(stats.exits)
        retries += stats.retries
        quarantined.extend(stats.quarantined)
    live = tuple(live)
    return PoolStats(
        state=driver.state,
        workers=tuple(worker for stats in live for worker in stats.workers),
        exits=dict(exits),
        submitted=driver.submitted,
        completed=driver.completed,
        failed=driver.failed,
        retries=retries,
        quarantined=tuple(quarantined),
        queued=driver.queued + sum(stats.queued for stats in live),
    )
