"""The supervisor's policies: what to do with the workers and the jobs at each step.

Each function looks at the workers as they are and acts through ``WorkerHandle`` and
``LeaseBook`` methods, so it holds no state of its own; the supervisor calls them in its
reconcile step, under its lock, in the order of its diagram.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter

from ocrpool.pool.config import PoolConfig
from ocrpool.pool.handle import Ask, WorkerHandle
from ocrpool.pool.leases import LeaseBook
from ocrpool.pool.protocol import Job
from ocrpool.stats import ExitCause, WorkerState

log = logging.getLogger("ocrpool")
Book = LeaseBook[WorkerHandle]


def rss_limit(limit_mb: float | None, config: PoolConfig, worker: WorkerHandle) -> float | None:
    """A memory limit as it applies to ``worker`` (counted from its warm RSS if relative)."""
    if limit_mb is None or not config.rss_relative:
        return limit_mb
    return limit_mb + (worker.warm_rss_mb or 0.0)


def job_deadline(worker: WorkerHandle, book: Book, config: PoolConfig) -> float | None:
    """When the job a busy worker is on runs out of time."""
    if worker.state is not WorkerState.BUSY:
        return None
    return book.deadline(worker, config.job_timeout)


def enforce_deadlines(
    workers: list[WorkerHandle], book: Book, config: PoolConfig, now: float
) -> None:
    """Stop workers whose job ran past ``job_timeout`` or whose start took too long."""
    for worker in workers:
        deadline = job_deadline(worker, book, config)
        lease = book.head(worker)
        if deadline is not None and now >= deadline and lease is not None:
            if worker.has_unread():
                continue  # its answer may be there: read before judging (the loop runs again)
            log.warning(
                "worker %d: %s (%s) past its %ss deadline",
                worker.pid,
                lease.label,
                lease.state.value,
                config.job_timeout,
            )
            worker.stop(ExitCause.TIMEOUT, Ask.SIGTERM, config.kill_grace, aimed_at=lease.job_id)
        elif (
            worker.state is WorkerState.STARTING and now - worker.started_at >= config.start_timeout
        ):
            reason = f"not ready after {config.start_timeout}s"
            worker.stop(ExitCause.START_FAILED, Ask.NOTHING, 0.0, reason)


def deadlines(workers: list[WorkerHandle], book: Book, config: PoolConfig) -> list[float]:
    """When something must happen next: a grace period ends, a start or a job times out."""
    found: list[float] = []
    for worker in workers:
        if worker.kill_deadline is not None:
            found.append(worker.kill_deadline)
        if worker.state is WorkerState.STARTING:
            found.append(worker.started_at + config.start_timeout)
        deadline = job_deadline(worker, book, config)
        if deadline is not None:
            found.append(deadline)
    return found


def busy_with_hard_limit(workers: list[WorkerHandle], config: PoolConfig) -> bool:
    """Whether RSS must be sampled: a hard limit is set and a job is running."""
    return config.effective_hard_rss_mb is not None and any(
        w.state is WorkerState.BUSY for w in workers
    )


def enforce_hard_limit(workers: list[WorkerHandle], config: PoolConfig) -> None:
    """SIGKILL every busy worker whose RSS is past the hard limit now."""
    for worker in workers:
        if worker.state is not WorkerState.BUSY:
            continue
        hard = rss_limit(config.effective_hard_rss_mb, config, worker)
        rss = worker.sample_rss()
        if hard is not None and rss is not None and rss >= hard:
            log.warning("worker %d: RSS %.0f MB past the hard limit %.0f", worker.pid, rss, hard)
            worker.stop(ExitCause.HARD_RSS, Ask.NOTHING, 0.0)


def retire_due(workers: list[WorkerHandle], config: PoolConfig) -> None:
    """A worker past its quota or its soft limit leaves as soon as its hands are empty;
    a warm spare takes its slot in ``promote_spares``, in the same step."""
    for worker in workers:
        if worker.state is WorkerState.IDLE and worker.due is not None:
            worker.stop(worker.due, Ask.MESSAGE, config.retire_grace)


def nearing_end(worker: WorkerHandle, config: PoolConfig, warmup_s: float) -> bool:
    """Whether an active worker will retire within a warm-up's worth of its jobs (plus
    one): by its quota, or by its soft limit at the rate its RSS grew per job so far
    (once it has done as many jobs: an engine's first jobs grow it more than the rest).
    That is when its replacement should start warming, to be ready just as it leaves."""
    if not worker.active:
        return False
    if worker.due is not None:
        return True
    job_s = max(worker.job_s or warmup_s, 1e-3)
    lead = math.ceil(warmup_s / job_s) + 1
    if worker.quota is not None and worker.quota - worker.jobs <= lead:
        return True
    limit = rss_limit(config.max_rss_mb, config, worker)
    if limit is None or worker.jobs < lead or worker.rss_mb is None or worker.warm_rss_mb is None:
        return False  # never extrapolate further than it has been seen to grow
    growth = (worker.rss_mb - worker.warm_rss_mb) / worker.jobs
    return growth > 0 and worker.rss_mb + growth * lead >= limit


def spares_wanted(workers: list[WorkerHandle], config: PoolConfig, warmup_s: float) -> int:
    """Spares to have warm or warming: ``spares`` at all times with ``warm_spares``; by
    default one per worker nearing its end, up to ``spares``, so a spare's engine is
    held only around a recycle."""
    if config.warm_spares:
        return config.effective_spares
    nearing = sum(nearing_end(worker, config, warmup_s) for worker in workers)
    return min(config.effective_spares, nearing) if nearing else 0


def promote_spares(workers: list[WorkerHandle], slots: int) -> int:
    """Fill empty slots with warm spares; the number of active workers after."""
    active = sum(w.active for w in workers)
    for worker in workers:
        if active >= slots:
            break
        if worker.state is WorkerState.SPARE:
            worker.activate()
            active += 1
    return active


def workers_to_start(workers: list[WorkerHandle], config: PoolConfig, wanted: int) -> int:
    """How many workers to start now: enough to reach ``wanted``, all at once for empty
    slots, else at most ``max_recycles_at_once`` warming together."""
    counts = Counter(w.state for w in workers)
    active = counts[WorkerState.IDLE] + counts[WorkerState.BUSY]
    starting, spare = counts[WorkerState.STARTING], counts[WorkerState.SPARE]
    urgent = max(0, config.workers - active - spare)
    allowed = max(urgent, config.max_recycles_at_once) - starting
    return max(0, min(wanted - (active + starting + spare), allowed))


def quota(config: PoolConfig, spawned: int, rng: random.Random) -> int | None:
    """The ``spawned``-th worker's job quota, staggered so workers do not all retire
    together: the first generation spreads over half the quota, then random jitter."""
    limit = config.max_jobs_per_worker
    if limit is None:
        return None
    offset = (spawned - 1) * limit // (2 * config.workers) if spawned <= config.workers else 0
    jitter = rng.randint(0, int(limit * config.recycle_jitter))
    return max(1, limit - offset - jitter)


def dispatch(workers: list[WorkerHandle], book: Book, prefetch_below_s: float) -> bool:
    """Give each idle worker a job, then one more to each busy worker whose last job was
    short (under ``prefetch_below_s``).

    Prefetching takes the supervisor's round trip out of short jobs; long jobs skip it,
    so a job never waits behind a long one while another worker is free. A prefetched
    job waits in the worker's pipe, SENT but not ACKED: if the worker dies or declines
    it, it goes back to the queue unblamed. No worker is sent a job past its quota.
    Whether an idle worker got a job (a new deadline to watch).
    """
    to_idle = False
    for depth in (0, 1):
        for worker in workers:
            if not worker.can_take(book.holds(worker), depth):
                continue
            if depth and (worker.job_s is None or worker.job_s >= prefetch_below_s):
                continue
            lease = book.take()
            if lease is None:
                return to_idle
            if worker.send(Job(lease.job_id, lease.source, lease.options, lease.split_from)):
                book.assign(lease, worker)
                to_idle = to_idle or not depth
            else:
                book.put_back(lease)
    return to_idle


def wind_down(workers: list[WorkerHandle], config: PoolConfig, stop_running: bool) -> None:
    """End every worker with nothing left to do; with ``stop_running``, running jobs too."""
    for worker in workers:
        if worker.state is WorkerState.BUSY and stop_running:
            worker.stop(ExitCause.SHUTDOWN, Ask.SIGTERM, config.kill_grace)
        elif worker.state is WorkerState.STARTING:
            worker.stop(ExitCause.SHUTDOWN, Ask.NOTHING, 0.0)
        elif worker.state in (WorkerState.IDLE, WorkerState.SPARE):
            worker.stop(worker.due or ExitCause.SHUTDOWN, Ask.MESSAGE, config.retire_grace)
