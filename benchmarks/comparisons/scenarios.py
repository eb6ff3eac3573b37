"""The scenarios by name, and the run-wide plan they share.

A scenario says how jobs are run (``Kind``) and with which engine and recycling settings;
the ``Plan`` says what is run (engine, options, inputs, number of workers). Every output
names scenarios as they are named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ocrpool.engines.aspose.engine import UNTUNED_OPTIONS


class Kind(Enum):
    """How a scenario runs its jobs."""

    INPROCESS = "inprocess"
    """One engine in the scenario process, reused for every job."""
    INPROCESS_LEAK = "inprocess-leak"
    """A new engine per job in the scenario process, never closed."""
    OCRPOOL = "ocrpool"
    PEBBLE = "pebble"
    CF_PPE = "cf-ppe"
    """``concurrent.futures.ProcessPoolExecutor``."""
    RAY = "ray"
    """ocrpool's Ray backend (``RayOcrPool``) on a Ray started in the scenario process."""

    @property
    def pooled(self) -> bool:
        return self not in (Kind.INPROCESS, Kind.INPROCESS_LEAK)


DOTNET_DEFAULTS: Mapping[str, Any] = UNTUNED_OPTIONS
"""The .NET runtime and Aspose as they run by themselves: what a user who writes Aspose's
documented code in another pool gets, since only ocrpool's engine tunes them (issues 14,
19)."""
PEER_RUNTIME = "; with Aspose, the .NET runtime's and Aspose's own settings"
ASPOSE_DEFAULTS: Mapping[str, Any] = {"threads": None, **DOTNET_DEFAULTS}
"""Aspose's own threading and runtime, as a user following its documentation gets them."""


@dataclass(frozen=True)
class Scenario:
    """One way of running the plan's jobs.

    ``aspose_options`` override the plan's engine options when the engine is ``aspose``
    (other engines do not take them). ``pool_options`` go to the pool's constructor as
    they are (``OcrPool``, ``pebble.ProcessPool``, ``ProcessPoolExecutor`` or
    ``RayOcrPool``). ``workers`` overrides the plan's number of workers (the tuning study
    varies it). An ``opt_in`` scenario runs only when named (``--scenarios``): it needs Ray.
    """

    name: str
    kind: Kind
    description: str
    aspose_options: Mapping[str, Any] = field(default_factory=dict)
    pool_options: Mapping[str, Any] = field(default_factory=dict)
    workers: int | None = None
    opt_in: bool = False


@dataclass(frozen=True)
class Plan:
    """What every scenario of one run shares: the same inputs and the same process count.

    ``in_flight`` is how many jobs a pooled scenario keeps submitted per worker: a new job
    goes in as each result comes back, so latency is what a caller sees at that depth.
    ``time_budget_s`` stops a scenario from starting new jobs once its timed window is that
    long (``None``: run every job), so a slow scenario costs minutes, not hours; its rates
    come from the jobs it finished.
    """

    engine: str
    engine_options: Mapping[str, Any]
    sources: tuple[str, ...]
    workers: int
    in_flight: int = 2
    time_budget_s: float | None = None
    workload: str = ""
    """The name results give this plan's engine and options (``fake-leak``); default: the
    engine's."""

    @property
    def label(self) -> str:
        return self.workload or self.engine

    def options_for(self, scenario: Scenario) -> dict[str, Any]:
        """The engine options a scenario runs with."""
        if self.engine == "aspose":
            return {**self.engine_options, **scenario.aspose_options}
        return dict(self.engine_options)

    def recognises_alike(self, scenario: Scenario) -> bool:
        """Whether ``scenario`` recognises with the plan's options: the runtime's settings
        aside, which change how fast, not what (``python -m benchmarks tune-engine``)."""
        options = self.options_for(scenario)
        return {k: v for k, v in options.items() if k not in DOTNET_DEFAULTS} == {
            k: v for k, v in self.engine_options.items() if k not in DOTNET_DEFAULTS
        }

    def workers_for(self, scenario: Scenario) -> int:
        if not scenario.kind.pooled:
            return 1
        return scenario.workers if scenario.workers is not None else self.workers


def standard_scenarios(max_jobs: int, rss_limit_mb: float) -> tuple[Scenario, ...]:
    """The comparison of issue 6, in its table order."""
    never = {"max_jobs_per_worker": None, "max_rss_mb": None}
    return (
        Scenario(
            "inprocess-reuse",
            Kind.INPROCESS,
            "one engine, Aspose's default threading and .NET runtime, reused for every job",
            aspose_options=ASPOSE_DEFAULTS,
        ),
        Scenario(
            "inprocess-tuned",
            Kind.INPROCESS,
            "one engine with ocrpool's engine defaults (single-threaded, the .NET runtime "
            "tuned by `tune-engine`), reused: the best in-process configuration found, whose "
            "CPU-s per image give the CPU limit",
        ),
        Scenario(
            "inprocess-dotnet",
            Kind.INPROCESS,
            "one engine with ocrpool's recognition options (single-threaded) and the .NET "
            "runtime's own settings, reused: a plain process running what ocrpool's workers "
            "run, for their CPU per image",
            aspose_options=DOTNET_DEFAULTS,
        ),
        Scenario(
            "inprocess-leak",
            Kind.INPROCESS_LEAK,
            "a new engine per job, never freed (the mistake Aspose's guide warns about)",
            aspose_options={**ASPOSE_DEFAULTS, "warmup": False},
        ),
        Scenario(
            "ocrpool-jobs",
            Kind.OCRPOOL,
            f"ocrpool with its defaults and max_jobs_per_worker={max_jobs}",
            pool_options={"max_jobs_per_worker": max_jobs},
        ),
        Scenario(
            "ocrpool-spare",
            Kind.OCRPOOL,
            "ocrpool-jobs making before breaking (spares=1): a spare warms ahead of each "
            "recycle even where every core serves jobs (the default then is none)",
            pool_options={"max_jobs_per_worker": max_jobs, "spares": 1},
        ),
        Scenario(
            "ocrpool-steady",
            Kind.OCRPOOL,
            "ocrpool never recycling (max_jobs_per_worker=None, max_rss_mb=None)",
            pool_options=never,
        ),
        Scenario(
            "ocrpool-rss",
            Kind.OCRPOOL,
            f"ocrpool recycling a worker once its RSS grew by {rss_limit_mb:g} MB "
            f"(max_rss_mb={rss_limit_mb:g}, rss_relative=True, max_jobs_per_worker=None)",
            pool_options={**never, "max_rss_mb": rss_limit_mb, "rss_relative": True},
        ),
        Scenario(
            "pebble",
            Kind.PEBBLE,
            f"pebble.ProcessPool(max_tasks={max_jobs}){PEER_RUNTIME}",
            aspose_options=DOTNET_DEFAULTS,
            pool_options={"max_tasks": max_jobs},
        ),
        Scenario(
            "pebble-steady",
            Kind.PEBBLE,
            f"pebble.ProcessPool, never recycling{PEER_RUNTIME}",
            aspose_options=DOTNET_DEFAULTS,
        ),
        Scenario(
            "cf-ppe",
            Kind.CF_PPE,
            f"ProcessPoolExecutor(max_tasks_per_child={max_jobs}){PEER_RUNTIME}",
            aspose_options=DOTNET_DEFAULTS,
            pool_options={"max_tasks_per_child": max_jobs},
        ),
        Scenario(
            "cf-ppe-steady",
            Kind.CF_PPE,
            f"ProcessPoolExecutor, never recycling{PEER_RUNTIME}",
            aspose_options=DOTNET_DEFAULTS,
        ),
        Scenario(
            "ray-jobs",
            Kind.RAY,
            f"ocrpool-jobs through the Ray backend: one actor hosting that pool "
            f"(max_jobs_per_worker={max_jobs}), inputs as paths",
            pool_options={"max_jobs_per_worker": max_jobs},
            opt_in=True,
        ),
        Scenario(
            "ray-ship-bytes",
            Kind.RAY,
            "ray-jobs with ship_bytes=True: the driver reads each file and sends its content",
            pool_options={"max_jobs_per_worker": max_jobs, "ship_bytes": True},
            opt_in=True,
        ),
    )
