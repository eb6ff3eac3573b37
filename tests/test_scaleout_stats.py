"""The Ray backend's aggregate stats, from the actors' own reports: no cluster needed."""

from __future__ import annotations

from ocrpool import PoolState, PoolStats, WorkerInfo, WorkerState
from ocrpool.scaleout import ACTOR_LOST
from ocrpool.scaleout.stats import DriverCounts, Reports, Snapshot, aggregate


def _report(exits: dict[str, int], workers: int, retries: int, *quarantined: str) -> PoolStats:
    return PoolStats(
        state=PoolState.RUNNING,
        workers=tuple(WorkerInfo(100 + n, WorkerState.IDLE, 3, 40.0, 1.0) for n in range(workers)),
        exits=exits,
        submitted=99,
        completed=99,
        failed=0,
        retries=retries,
        quarantined=quarantined,
        queued=1,
    )


def test_gone_incarnations_keep_their_exits_and_only_live_ones_their_workers() -> None:
    driver = DriverCounts(PoolState.RUNNING, 10, 6, 1, 2, 3, 1, ("lost.png",))
    gone = _report({"max_jobs": 2, "crash": 1}, 2, 1, "crash.png")
    first = _report({"max_jobs": 1}, 1, 0)
    second = _report({"soft_rss": 1, "max_jobs": 1}, 2, 2, "abort.png")
    stats = aggregate(driver, [gone, first, second], [first, second])
    assert stats.exits == {ACTOR_LOST: 1, "max_jobs": 4, "crash": 1, "soft_rss": 1}
    assert len(stats.workers) == 3 and stats.queued == 2 + 2
    assert stats.retries == 3 + 1 + 2  # calls sent again, and workers' retries
    assert stats.quarantined == ("lost.png", "crash.png", "abort.png")
    assert (stats.submitted, stats.completed, stats.failed) == (10, 6, 1)  # the driver's
    assert stats.recycles == 5


def test_a_reply_older_than_the_kept_snapshot_never_takes_its_place() -> None:
    """An actor answers from several threads, so its replies arrive in any order; keeping
    the last to arrive made its exits and retries go backwards."""
    reports = Reports()
    older = Snapshot(4, _report({"max_jobs": 1}, 2, 0))
    newer = Snapshot(5, _report({"max_jobs": 1, "crash": 1}, 2, 1, "crash.png"))
    restarted = Snapshot(1, _report({}, 2, 0))
    reports.keep(("a", 10), newer)
    reports.keep(("a", 10), older)  # taken first, arrived last
    reports.keep(("a", 11), restarted)  # a new incarnation numbers its own from 1
    assert reports.get(("a", 10)) is newer.stats
    assert reports.get(("a", 11)) is restarted.stats and reports.get(("b", 12)) is None
    driver = DriverCounts(PoolState.RUNNING, 10, 6, 1, 0, 0, 1, ())
    stats = aggregate(driver, reports.all(), [restarted.stats])
    assert stats.exits == {ACTOR_LOST: 1, "max_jobs": 1, "crash": 1}
    assert stats.retries == 1 and stats.quarantined == ("crash.png",)
