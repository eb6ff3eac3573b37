"""Short chaos episodes: random SIGKILLs (any worker, the largest), SIGSTOPs of busy
workers and poison inputs while jobs flow through each of the pool's front doors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ocrpool import PoolState

from .episodes import CHAOS_SETTINGS, Driver, Episode, plan, run_episode
from .faults import Fault, InputKind
from .oplog import Outcome

SETTINGS = {
    **CHAOS_SETTINGS,
    "job_timeout": 1.0,
    "engine_options": {"balloon_mb": 400, "delay": 0.01},
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("driver", "seed"), [(Driver.SUBMIT, 1), (Driver.IMAP, 2), (Driver.ASYNCIO, 3)]
)
def test_every_job_ends_exactly_once_under_random_faults(
    tmp_path: Path, driver: Driver, seed: int
) -> None:
    episode = Episode(
        driver,
        jobs=150,
        seed=seed,
        fault_rate=3.0,
        poison_rate=0.02,
        settings=SETTINGS,
        min_faults=3,
    )
    report = run_episode(episode, tmp_path)
    assert report.problems == []
    assert report.log.invoked == report.log.completions == 150
    assert report.injected.total() >= episode.min_faults
    assert report.log.outcomes[Outcome.OK] >= 100


KILLED_AT_ANY_STEP = {
    **CHAOS_SETTINGS,
    "retries": 6,
    "job_timeout": 2.0,
    "kill_grace": 0.3,
    "start_timeout": 2.0,
    "engine_options": {"delay": 0.01},
}
"""Issue 18's pool: enough retries that outside kills cannot use up a good input's, and a
stopped start ends in 2 s."""
KILLS_AND_STOPS = (*[Fault.KILL_PROCESS] * 7, Fault.STOP_JOBLESS)
"""7 SIGKILLs to 1 SIGSTOP: at 8 faults a second, 7 kills and a stop each second."""
POISON_KINDS = (Fault.CRASH_INPUT, Fault.ABORT_INPUT, Fault.HANG_INPUT)
OWN_ERROR = {
    InputKind.CRASH: "WorkerCrashed",
    InputKind.ABORT: "WorkerCrashed",
    InputKind.HANG: "JobTimeout",
}


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("driver", "seed"), [(Driver.IMAP, 1), (Driver.ASYNCIO, 9), (Driver.IMAP, 15)]
)
def test_outside_kills_of_any_worker_at_any_step_cost_no_good_input(
    tmp_path: Path, driver: Driver, seed: int
) -> None:
    """Issue 18's episode: 300 inputs, 1% of them poison (each seed plans a crash, an abort
    and a hang), while an outside thread SIGKILLs a worker picked by parentage (busy, idle,
    spare, starting, not yet registered) 7 times a second and SIGSTOPs one holding no job
    once a second. Each input ends exactly once: every good one ok, every poison one with
    its own typed error; the pool is never broken and leaves no process behind."""
    episode = Episode(
        driver,
        jobs=300,
        seed=seed,
        fault_rate=8.0,
        faults=KILLS_AND_STOPS,
        poison_rate=0.01,
        poisons=POISON_KINDS,
        settings=KILLED_AT_ANY_STEP,
        min_faults=10,
        counted=Fault.KILL_PROCESS,
    )
    kinds = Counter(plan(episode))
    assert set(kinds) == {InputKind.GOOD, *OWN_ERROR}  # the seed plans every poison
    report = run_episode(episode, tmp_path)
    by_kind = report.log.by_kind
    assert PoolState.BROKEN not in report.pool_states, report.pool_states
    assert report.problems == []
    assert by_kind[InputKind.GOOD, "ok"] == kinds[InputKind.GOOD], by_kind
    for kind, error in OWN_ERROR.items():
        assert by_kind[kind, error] == kinds[kind], by_kind
    assert report.injected[Fault.KILL_PROCESS] >= episode.min_faults
