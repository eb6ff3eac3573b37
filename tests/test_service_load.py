"""A short load test of ``ocrpool serve`` (the full one is ``python -m benchmarks service``):
concurrent clients, a fixed number of requests each, while workers are SIGKILLed at random.
Loopback only, bounded in count and time. No timing is asserted: only that every request
got exactly one answer, a result or a typed error, never a 500, and that the server's own
memory stays flat."""

from __future__ import annotations

from pathlib import Path

from test_batch_admission import png_header

from benchmarks.load import WorkerKiller, drive, http_senders
from benchmarks.served import ServiceProcess

CLIENTS = 8
REQUESTS = 40
TYPED_ERRORS = {"WorkerCrashed"}
"""What a job lost with its worker on every try (``--retries``) fails with."""


def test_load_while_workers_are_sigkilled(tmp_path: Path) -> None:
    args = ["--engine", "fake", "--workers", "2", "--spares", "1", "--retries", "2"]
    bodies = [png_header(8, 8 + i) for i in range(5)]
    with ServiceProcess([*args, "--engine-option", "delay=0.01"], tmp_path / "log") as served:
        served.start()
        warm_up = drive(http_senders(served, bodies, CLIENTS), REQUESTS // 4, time_budget_s=120)
        rss_before = served.rss_mb()
        with WorkerKiller(served, interval_s=0.05, max_kills=25, seed=13) as killer:
            load = drive(http_senders(served, bodies, CLIENTS), REQUESTS, time_budget_s=120)
        rss_after = served.rss_mb()
        settled = served.metric("ocrpool_jobs_total")
    print(
        f"\n{load.requests} requests, {killer.kills} workers killed: {dict(load.outcomes)}; "
        f"{load.requests_per_s:.0f} req/s, p50 {load.p_ms(0.5):.1f} ms, "
        f"p99 {load.p_ms(0.99):.1f} ms; server RSS {rss_before:.1f} -> {rss_after:.1f} MB"
    )
    assert load.requests == CLIENTS * REQUESTS
    assert load.answered == load.requests
    assert set(load.outcomes) <= {"ok"} | TYPED_ERRORS, load.outcomes
    assert load.outcomes["ok"] > 0 and killer.kills > 0
    assert settled == warm_up.requests + load.requests
    assert rss_after - rss_before < 20, (rss_before, rss_after)
