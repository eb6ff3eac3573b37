"""A short load test of ``ocrpool serve`` (the full one is ``python -m benchmarks service``):
concurrent clients, a fixed number of requests each, while workers are SIGKILLed at random.
Loopback only, bounded in count and time. No timing is asserted: only that every request
got exactly one answer, a result or a typed error, never a 500, and that the server's own
memory stays flat."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_batch_admission import png_header

from benchmarks.service import KILL_INTERVAL_S, Trial, run_served

CLIENTS = 8
REQUESTS = 40


@pytest.mark.slow
def test_load_while_workers_are_sigkilled(tmp_path: Path) -> None:
    trial = Trial(
        "kills",
        "fake",
        CLIENTS,
        REQUESTS,
        time_budget_s=120,
        engine_options={"delay": 0.01},
        kill_interval_s=KILL_INTERVAL_S,
    )
    bodies = [png_header(8, 8 + i) for i in range(5)]
    row = run_served(trial, bodies, workers=2, log=tmp_path / "log")
    print(
        f"\n{row.requests} requests, {row.kills} workers killed: {row.ok} ok, "
        f"{row.typed_errors} typed errors; {row.requests_per_s:.0f} req/s, "
        f"p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms; "
        f"server RSS {row.server_rss_start_mb:.1f} -> {row.server_rss_end_mb:.1f} MB"
    )
    assert row.requests == row.answered == row.settled == CLIENTS * REQUESTS
    assert row.ok + row.typed_errors == row.requests
    assert row.http_500 == row.no_answer == 0
    assert row.ok > 0 and row.kills > 0
    assert row.server_rss_end_mb - row.server_rss_start_mb < 20
