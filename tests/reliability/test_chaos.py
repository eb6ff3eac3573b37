"""Short chaos episodes: random SIGKILLs (any worker, the largest), SIGSTOPs of busy
workers and poison inputs while jobs flow through each of the pool's front doors."""

from __future__ import annotations

from pathlib import Path

import pytest

from .episodes import CHAOS_SETTINGS, Driver, Episode, run_episode
from .oplog import Outcome

SETTINGS = {
    **CHAOS_SETTINGS,
    "job_timeout": 1.0,
    "engine_options": {"balloon_mb": 400, "delay": 0.01},
}


@pytest.mark.parametrize(
    ("driver", "seed"), [(Driver.SUBMIT, 1), (Driver.IMAP, 2), (Driver.ASYNCIO, 3)]
)
def test_every_job_ends_exactly_once_under_random_faults(
    tmp_path: Path, driver: Driver, seed: int
) -> None:
    episode = Episode(
        driver, jobs=150, seed=seed, fault_rate=3.0, poison_rate=0.02, settings=SETTINGS
    )
    report = run_episode(episode, tmp_path)
    assert report.problems == []
    assert report.log.invoked == report.log.completions == 150
    assert sum(report.injected.values()) >= 1
    assert report.log.outcomes[Outcome.OK] >= 100
