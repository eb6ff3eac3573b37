"""Issue 18's blame policy, through the public API: an input whose worker dies under it
pays for it (retried, then quarantined), however many such inputs come in a row; only
engine starts that fail break the pool, with ``EngineStartError``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ocrpool import (
    EngineStartError,
    ExitCause,
    OcrResult,
    PoolState,
    WorkerCrashed,
    WorkerExit,
)

from .invariants import no_orphans
from .test_lease_states import good, pool

BOUND_S = 120.0
"""How long any one result may take here: a test that found a hang fails, never waits."""


def errors(results: list[OcrResult]) -> list[str]:
    return [type(r.error).__name__ if r.error else "ok" for r in results]


@pytest.mark.slow
def test_sixty_crashing_inputs_in_a_row_cost_only_themselves(tmp_path: Path) -> None:
    crashes = [good(tmp_path, f"crash-{n:02d}.png") for n in range(60)]
    with pool(workers=2, spares=1, retries=1) as ocr:
        results = list(ocr.imap(crashes))
        after = ocr.submit_result(good(tmp_path)).result(timeout=BOUND_S)
        stats = ocr.stats()
    assert errors(results) == ["WorkerCrashed"] * 60
    for result in results:
        assert isinstance(result.error, WorkerCrashed) and result.error.signal == "SIGSEGV"
        assert [a.outcome for a in result.attempts] == ["WorkerCrashed"] * 2
    assert after.ok, after.error
    assert stats.state is PoolState.RUNNING
    assert stats.exits["crash"] == 120
    assert sorted(stats.quarantined) == crashes
    assert no_orphans() == []


@pytest.mark.slow  # 1.5 s of backoff between the three starts
@pytest.mark.parametrize("how", ["raise", "exit", "abort"])
def test_an_engine_whose_warm_up_fails_ends_the_pool_at_construction(how: str) -> None:
    with pytest.raises(EngineStartError) as caught:
        pool(workers=1, spares=0, engine_options={"fail_start": how})
    assert caught.value.attempts == 3  # max_start_failures, by default, one start at a time
    assert "ocrpool doctor" in str(caught.value)
    assert no_orphans() == []


@pytest.mark.slow
def test_starts_that_begin_to_fail_mid_life_break_the_pool_with_engine_start_error(
    tmp_path: Path,
) -> None:
    """Inputs crash one worker after another, more in a row than the old restart limit
    allowed (10); from the 11th crash on, the engine cannot start any more (its marker file
    appears). The crashed inputs fail as crashes; the inputs still queued, and the next
    submit, fail with ``EngineStartError``."""
    outage = tmp_path / "outage"
    crashed = 0
    eleventh = threading.Event()

    def on_exit(record: WorkerExit) -> None:
        nonlocal crashed
        crashed += record.cause is ExitCause.CRASH
        if crashed == 11:
            outage.touch()
            eleventh.set()

    crashes = [good(tmp_path, f"crash-{n:02d}.png") for n in range(14)]
    goods = [good(tmp_path, f"good-{n}.png") for n in range(3)]
    options = {"fail_start_while": str(outage)}
    with pool(
        workers=1, spares=0, retries=0, engine_options=options, on_worker_exit=on_exit
    ) as ocr:
        futures = [ocr.submit_result(path) for path in crashes + goods]
        results = [future.result(timeout=BOUND_S) for future in futures]
        stats = ocr.stats()
        with pytest.raises(EngineStartError):
            ocr.submit(goods[0])
    assert eleventh.is_set()
    ended = errors(results)
    # the worker started as the 11th crash was seen may have been warm before the outage
    assert ended[:11] == ["WorkerCrashed"] * 11, ended
    assert ended[11] in ("WorkerCrashed", "EngineStartError"), ended
    assert ended[12:] == ["EngineStartError"] * 5, ended
    assert stats.state is PoolState.BROKEN
    assert stats.exits["start_failed"] == 3
    assert no_orphans() == []
