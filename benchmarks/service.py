"""``python -m benchmarks service``: requests/s and latency through ``ocrpool serve`` against
calling ``OcrPool`` directly, and the service under load while workers are SIGKILLed.

Trials, each with the same clients (threads sending one request after another) and the
same inputs (the corpus images, sent as bytes):

- fake no-op engine, 1 client: the service's overhead per request (mean latency minus the
  direct call's);
- fake no-op engine, 8 clients: requests/s at saturation;
- Aspose on the corpus images, 2 clients per worker: the throughput ratio (goal >= 0.95);
- fake engine (10 ms jobs), many clients while a random worker is SIGKILLed every 0.5 s:
  every request must get one answer, a result or a typed error, never a 500; the server's
  own RSS before and after.

Loopback only; every trial is bounded by a request count and a time budget.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness.tables import RunClock, cell, markdown_table, write_csv
from benchmarks.load import Drive, WorkerKiller, drive, http_senders, pool_senders
from ocrpool import OcrPool
from tests.support.served import ServiceProcess

NAN = float("nan")
SETTLED = "ocrpool_jobs_total"
KILL_INTERVAL_S = 0.5
MAX_KILLS = 150


@dataclass(frozen=True)
class Trial:
    name: str
    engine: str
    clients: int
    requests_per_client: int
    time_budget_s: float
    engine_options: dict[str, Any] = field(default_factory=dict)
    kill_interval_s: float | None = None
    """SIGKILL a random worker this often (through the service only)."""


@dataclass(frozen=True)
class Row:
    trial: str
    via: str
    engine: str
    workers: int
    clients: int
    requests: int
    answered: int
    ok: int
    typed_errors: int
    http_500: int
    no_answer: int
    elapsed_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    kills: int
    server_rss_start_mb: float
    server_rss_end_mb: float
    settled: int
    """Jobs the service (or the pool) settled: one per request, when each got one answer."""


def trials(quick: bool, engine: str, aspose_budget_s: float | None, workers: int) -> list[Trial]:
    scale = 10 if quick else 1
    budget = aspose_budget_s or (8.0 if quick else 60.0)
    chosen = [
        Trial("fake-noop-1-client", "fake", 1, 2000 // scale, 60.0),
        Trial("fake-noop-8-clients", "fake", 8, 400 // scale, 60.0),
    ]
    if engine == "aspose":
        chosen.append(Trial("aspose", "aspose", 2 * workers, 10_000, budget))
    chosen.append(
        Trial(
            "fake-kills",
            "fake",
            16,
            300 // scale,
            90.0,
            engine_options={"delay": 0.01},
            kill_interval_s=KILL_INTERVAL_S,
        )
    )
    return chosen


def run_direct(trial: Trial, bodies: Sequence[bytes], workers: int) -> Row:
    with OcrPool(workers, engine=trial.engine, engine_options=trial.engine_options) as pool:
        drive(pool_senders(pool, bodies, trial.clients), 2, trial.time_budget_s)
        result = drive(
            pool_senders(pool, bodies, trial.clients),
            trial.requests_per_client,
            trial.time_budget_s,
        )
    return _row(trial, "direct", workers, result, 0, (NAN, NAN), result.requests)


def run_served(trial: Trial, bodies: Sequence[bytes], workers: int, log: Path) -> Row:
    args = ["--engine", trial.engine, "--workers", str(workers), "--max-queue", "1024"]
    for key, value in trial.engine_options.items():
        args += ["--engine-option", f"{key}={value}"]
    if trial.kill_interval_s is not None:
        args += ["--retries", "2"]
    with ServiceProcess(args, log) as served:
        served.start(timeout_s=300)
        drive(http_senders(served, bodies, trial.clients), 2, trial.time_budget_s)
        rss_start, settled_before = served.rss_mb(), served.metric(SETTLED)
        senders = http_senders(served, bodies, trial.clients)
        with WorkerKiller(served, trial.kill_interval_s, MAX_KILLS, seed=7) as killer:
            result = drive(senders, trial.requests_per_client, trial.time_budget_s)
        rss_end, settled = served.rss_mb(), served.metric(SETTLED) - settled_before
    return _row(trial, "service", workers, result, killer.kills, (rss_start, rss_end), settled)


def _row(
    trial: Trial,
    via: str,
    workers: int,
    result: Drive,
    kills: int,
    rss: tuple[float, float],
    settled: float,
) -> Row:
    return Row(
        trial=trial.name,
        via=via,
        engine=trial.engine,
        workers=workers,
        clients=trial.clients,
        requests=result.requests,
        answered=result.answered,
        ok=result.outcomes["ok"],
        typed_errors=result.answered - result.outcomes["ok"] - result.count("http"),
        http_500=result.outcomes["http 500"],
        no_answer=result.count("transport"),
        elapsed_s=result.elapsed_s,
        requests_per_s=result.requests_per_s,
        p50_ms=result.p_ms(0.5),
        p99_ms=result.p_ms(0.99),
        mean_ms=result.mean_ms,
        kills=kills,
        server_rss_start_mb=rss[0],
        server_rss_end_mb=rss[1],
        settled=int(settled),
    )


def findings(rows: Sequence[Row]) -> list[str]:
    """The figures the README quotes, computed from the rows."""
    by = {(row.trial, row.via): row for row in rows}
    lines = []
    one = ("fake-noop-1-client", "direct"), ("fake-noop-1-client", "service")
    if all(key in by for key in one):
        direct, served = (by[key] for key in one)
        lines.append(
            "overhead per request (fake no-op, 1 client): "
            f"{served.mean_ms - direct.mean_ms:.2f} ms (mean {served.mean_ms:.2f} ms through "
            f"the service, {direct.mean_ms:.2f} ms direct)"
        )
    for trial in ("fake-noop-8-clients", "aspose"):
        if (trial, "direct") in by and (trial, "service") in by:
            direct, served = by[(trial, "direct")], by[(trial, "service")]
            lines.append(
                f"{trial}: service/direct requests/s = {served.requests_per_s:.2f} / "
                f"{direct.requests_per_s:.2f} = "
                f"{served.requests_per_s / direct.requests_per_s:.3f}; "
                f"p99 {served.p99_ms:.1f} ms vs {direct.p99_ms:.1f} ms"
            )
    kills = by.get(("fake-kills", "service"))
    if kills is not None:
        lines.append(
            f"load with kills: {kills.requests} requests from {kills.clients} clients, "
            f"{kills.kills} workers SIGKILLed: {kills.ok} ok, {kills.typed_errors} typed errors, "
            f"{kills.http_500} HTTP 500, {kills.no_answer} without an answer; "
            f"{kills.requests_per_s:.0f} req/s, p50 {kills.p50_ms:.1f} ms, "
            f"p99 {kills.p99_ms:.1f} ms; server RSS {kills.server_rss_start_mb:.1f} -> "
            f"{kills.server_rss_end_mb:.1f} MB"
        )
    return lines


_COLUMNS: tuple[tuple[str, Callable[[Row], str]], ...] = (
    ("trial", lambda r: r.trial),
    ("via", lambda r: r.via),
    ("clients", lambda r: str(r.clients)),
    ("requests", lambda r: str(r.requests)),
    ("ok", lambda r: str(r.ok)),
    ("typed errors", lambda r: str(r.typed_errors)),
    ("HTTP 500", lambda r: str(r.http_500)),
    ("no answer", lambda r: str(r.no_answer)),
    ("req/s", lambda r: cell(r.requests_per_s, 1)),
    ("p50 ms", lambda r: cell(r.p50_ms, 1)),
    ("p99 ms", lambda r: cell(r.p99_ms, 1)),
    ("mean ms", lambda r: cell(r.mean_ms, 2)),
    ("kills", lambda r: str(r.kills)),
    ("settled", lambda r: str(r.settled)),
    (
        "server RSS MB",
        lambda r: f"{cell(r.server_rss_start_mb, 1)} -> {cell(r.server_rss_end_mb, 1)}",
    ),
)


def benchmark(
    chosen: Sequence[Trial],
    bodies: Sequence[bytes],
    workers: int,
    out: Path,
    command: str,
    setup: Sequence[str],
    log: Callable[[str], None],
) -> list[Row]:
    """Run every trial directly and through the service (kill trials: the service only);
    write ``results.csv`` and ``results.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    clock = RunClock()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ocrpool-serve-logs-") as logs:
        for trial in chosen:
            if trial.kill_interval_s is None:
                rows.append(run_direct(trial, bodies, workers))
                log(_line(rows[-1]))
            rows.append(run_served(trial, bodies, workers, Path(logs) / f"{trial.name}.log"))
            log(_line(rows[-1]))
    header = clock.header("ocrpool serve against OcrPool called directly", command, setup)
    table = markdown_table(
        [name for name, _ in _COLUMNS], [[show(r) for _, show in _COLUMNS] for r in rows]
    )
    summary = findings(rows)
    markdown = [*header.markdown(), "", "## Results", "", *table, "", "## Findings", ""]
    markdown += [f"- {line}" for line in summary]
    (out / "results.md").write_text("\n".join([*markdown, ""]))
    write_csv(out / "results.csv", [dataclasses.asdict(row) for row in rows])
    for line in summary:
        log(line)
    log(f"wrote {out / 'results.md'}, {out / 'results.csv'}")
    return rows


def _line(row: Row) -> str:
    return (
        f"{row.trial} via {row.via}: {row.requests} requests, {row.requests_per_s:.1f} req/s, "
        f"p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms, {row.ok} ok"
    )
