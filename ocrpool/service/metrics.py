"""The service's Prometheus metrics, in a registry of its own (never the global one).

Counters the service owns (jobs by outcome, refusals, the latency histogram) are updated as
things happen; the pool's own numbers (queue, workers, exits) are read from
``pool.stats()`` at each scrape, so they have one owner: the supervisor.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from ocrpool.service.backpressure import Slots
from ocrpool.service.jobs import JobTable
from ocrpool.service.lifecycle import PoolLifecycle, ServiceState
from ocrpool.stats import ExitCause

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
"""From no-op fake jobs (milliseconds) to real OCR of large pages (tens of seconds)."""

_MB = 1024 * 1024


class ServiceMetrics:
    def __init__(self, lifecycle: PoolLifecycle, jobs: JobTable, slots: Slots) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "ocrpool_jobs",
            "Jobs settled, by outcome: ok, the error type, or cancelled",
            ["outcome"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "ocrpool_job_duration_seconds",
            "Seconds from accepting a job to its result: queueing, retries and OCR",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.refused = Counter(
            "ocrpool_requests_refused",
            "Requests refused before any job existed, by error type",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_PoolCollector(lifecycle, jobs, slots))
        # The service process's own memory, CPU, open files and start time (process_*,
        # the names every Prometheus client exports); its workers are in ocrpool_worker_*.
        ProcessCollector(registry=self.registry)

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _PoolCollector(Collector):
    def __init__(self, lifecycle: PoolLifecycle, jobs: JobTable, slots: Slots) -> None:
        self._lifecycle = lifecycle
        self._jobs = jobs
        self._slots = slots

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "ocrpool_service_state", "1 for the service's current state", labels=["state"]
        )
        for value in ServiceState:
            state.add_metric([value.value], float(value is self._lifecycle.state))
        yield state
        yield GaugeMetricFamily(
            "ocrpool_queue_slots_used",
            "Jobs accepted and unfinished, uploads included (429 at --max-queue)",
            value=self._slots.used,
        )
        yield GaugeMetricFamily(
            "ocrpool_queue_slots", "The queue's bound (--max-queue)", value=self._slots.limit
        )
        yield GaugeMetricFamily(
            "ocrpool_results_stored",
            "Finished jobs whose results are kept",
            value=self._jobs.stored,
        )
        yield GaugeMetricFamily(
            "ocrpool_results_stored_bytes",
            "Bytes of the kept results (bounded by --max-results-mb)",
            value=self._jobs.stored_bytes,
        )
        stats = self._lifecycle.stats()
        # 0 without a pool (warming up, broken, stopped), not absent: an alert on
        # ocrpool_workers_ready < 1 would see no series at the very moment it is meant for.
        yield GaugeMetricFamily(
            "ocrpool_queue_depth",
            "Jobs in the pool's queue, waiting for a worker",
            0 if stats is None else stats.queued,
        )
        yield GaugeMetricFamily(
            "ocrpool_workers_ready",
            "Workers serving jobs now (idle or busy)",
            0 if stats is None else stats.ready,
        )
        if stats is None:
            return
        rss = GaugeMetricFamily(
            "ocrpool_worker_rss_bytes",
            "Each worker's resident memory after its last job",
            labels=["pid", "state"],
        )
        for worker in stats.workers:
            if worker.rss_mb is not None:
                rss.add_metric([str(worker.pid), worker.state.value], worker.rss_mb * _MB)
        yield rss
        exits = CounterMetricFamily(
            "ocrpool_worker_exits", "Worker exits, by cause", labels=["cause"]
        )
        for cause in ExitCause:
            exits.add_metric([cause.value], stats.exits.get(cause.value, 0))
        yield exits
        yield CounterMetricFamily(
            "ocrpool_worker_recycles",
            "Planned retirements: after max jobs, or past the soft memory limit",
            value=stats.recycles,
        )
        yield CounterMetricFamily(
            "ocrpool_job_retries", "Jobs tried again after their worker died", value=stats.retries
        )
