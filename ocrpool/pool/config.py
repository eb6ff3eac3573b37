"""The pool's settings, their defaults, and their validation in one place; and how any
settings dataclass (this one, the service's) is read from ``OCRPOOL_*`` variables."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ocrpool.engines import check_option_names, resolve_engine
from ocrpool.exports import ExportFormat, parse_formats
from ocrpool.merge import MERGEABLE
from ocrpool.pool.documents import PageJobs
from ocrpool.pool.limits import InputLimits


def _usable_cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def _default_workers() -> int:
    """One single-threaded engine per core: in the tuning study 2 workers kept 1.93 of 2
    cores busy and 3 workers 1.94, for 480 MB more (benchmarks/results/tuning.md)."""
    return _usable_cores()


@dataclass(frozen=True)
class PoolConfig:
    """Every setting of a pool and its default; ``OcrPool``, the CLI and the service take
    their defaults from here. ``OcrPool(config=..., **overrides)`` validates a copy."""

    workers: int = field(default_factory=_default_workers)
    """Engines serving jobs at once (default: one per CPU core)."""
    max_jobs_per_worker: int | None = 50
    """A worker takes at most this many jobs, then retires (``None``: never)."""
    max_rss_mb: float | None = 1024.0
    """A worker whose RSS is past this after a job takes no further job (soft limit)."""
    hard_rss_mb: float | None = None
    """A worker past this during a job is killed and the job retried (default 2x soft)."""
    rss_relative: bool = False
    """Count both limits from each worker's RSS right after warm-up."""
    job_timeout: float | None = 120.0
    """A job running longer fails with ``JobTimeout``; its worker is stopped."""
    retries: int = 1
    """Retries, on fresh workers, of a job whose worker died (crash, kill, hard limit)."""
    spares: int | None = None
    """Replacements beyond ``workers`` warmed ahead of a recycle, ready to take a retiring
    worker's slot at once: each is started when a worker nears its quota or its soft
    limit (a warm-up's worth of its jobs ahead), so its engine is held only around a
    recycle. ``None`` (the default): 1 when the workers leave a CPU core free to warm
    it (or with ``warm_spares``), else 0: with every core serving jobs, a warming spare
    only takes CPU from them and holds one more engine (``effective_spares``)."""
    warm_spares: bool = False
    """Keep the ``spares`` warm at all times instead: a replacement ready at once after an
    unplanned death too, for one more engine's memory all the time."""
    split_pages: bool = True
    """Split a multi-page TIFF or PDF into page jobs that any worker runs; the pool puts
    their pages back in order into one result (only for an engine that reads page spans,
    and when every export asked for can be merged)."""
    pages_per_job: int = 1
    """Pages in one page job of a split document."""
    split_min_pages: int = 4
    """Documents with fewer pages than this are one job, as single images are."""
    max_pixels: int | None = None
    """An image, or a TIFF page, whose header declares more pixels than this fails with
    ``ImageTooLarge``, never retried: a possible decompression bomb. The worker checks
    just before its engine reads the input, so a file changed after the caller's own
    checks cannot take one past it. ``None`` or 0 (the default): no limit, no check
    (``ocrpool run`` and ``ocrpool serve`` set ``DEFAULT_MAX_PIXELS``, ``--max-pixels``)."""
    max_pages: int | None = None
    """A document of more pages fails with ``DocumentTooLong``, never retried, split or
    read by the engine; counted, like ``max_pixels``, just before the engine would read
    it (``None``: no limit)."""
    engine: str = "aspose"
    """The OCR engine each worker owns: ``aspose``, ``tesseract``, ``fake`` (for tests), or a
    ``module:Class`` of your own."""
    engine_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the engine's constructor (its language, exports, ...), checked
    by the engine when a worker starts."""
    start_timeout: float = 120.0
    """A worker not warm after this many seconds is a failed start; forks refused this
    long for want of descriptors or memory, with no worker serving, break the pool."""
    max_start_failures: int = 3
    """Failed engine starts in a row after which the pool is broken (``EngineStartError``):
    the only way a pool breaks; worker deaths cost their job an attempt, or nothing."""
    max_recycles_at_once: int = 1
    """Replacements warming at once beyond the ones needed to fill empty slots."""
    recycle_jitter: float = 0.1
    """Each worker's quota is cut by up to this fraction, so workers retire apart."""
    kill_grace: float = 2.0
    """Seconds between SIGTERM and SIGKILL for a worker stopped during a job."""
    retire_grace: float = 10.0
    """Seconds a retiring worker has to close its engine before SIGKILL."""
    rss_sample_interval: float = 0.2
    """How often busy workers' RSS is sampled against the hard limit."""
    max_in_flight: int | None = None
    """Jobs ``imap``/``aimap`` keep submitted at once (default 3 x (workers + spares))."""
    prefetch_below_s: float = 0.05
    """A busy worker whose last job took less than this gets its next job sent ahead (only
    with a ``job_timeout``: ``effective_prefetch_below_s``)."""
    warm_nice: int = 10
    """How much lower (0-19, added to the worker's nice value, 19 at most) the priority of
    the thread that starts and warms a worker's engine is, so replacements warm on CPU
    the busy workers do not need; jobs run at the worker's own priority."""
    start_method: str = "forkserver"
    """``forkserver``: workers are forked from a server that imported the worker's modules
    (never an engine); ``spawn``: a fresh interpreter per worker."""

    def __post_init__(self) -> None:
        check_types(self, durations=_DURATIONS)
        _require(self.workers >= 1, "workers must be at least 1")
        _require(self.spares is None or self.spares >= 0, "spares must be 0 or more")
        _require(self.retries >= 0, "retries must be 0 or more")
        _require(self.prefetch_below_s >= 0, "prefetch_below_s must be 0 or more")
        _require(0 <= self.warm_nice <= 19, "warm_nice must be in [0, 19]")
        _require(
            self.start_method in ("forkserver", "spawn"),
            "start_method must be 'forkserver' or 'spawn'",
        )
        _require(self.pages_per_job >= 1, "pages_per_job must be at least 1")
        _require(self.split_min_pages >= 2, "split_min_pages must be at least 2")
        _require(self.max_pixels is None or self.max_pixels >= 0, "max_pixels must be 0 or more")
        _require(
            self.max_pages is None or self.max_pages >= 1, "max_pages must be at least 1 or None"
        )
        _require(self.max_start_failures >= 1, "max_start_failures must be at least 1")
        _require(self.max_recycles_at_once >= 1, "max_recycles_at_once must be at least 1")
        _require(0.0 <= self.recycle_jitter < 1.0, "recycle_jitter must be in [0, 1)")
        for name in ("job_timeout", "max_rss_mb", "hard_rss_mb"):
            value = getattr(self, name)
            _require(value is None or value > 0, f"{name} must be positive or None")
        _require(
            self.max_jobs_per_worker is None or self.max_jobs_per_worker >= 1,
            "max_jobs_per_worker must be at least 1 or None",
        )
        for name in (
            "start_timeout",
            "kill_grace",
            "retire_grace",
            "rss_sample_interval",
        ):
            _require(getattr(self, name) > 0, f"{name} must be positive")
        soft, hard = self.max_rss_mb, self.effective_hard_rss_mb
        _require(
            soft is None or hard is None or hard >= soft, "hard_rss_mb must not be below max_rss_mb"
        )
        _require(
            self.max_in_flight is None or self.max_in_flight >= 1, "max_in_flight must be >= 1"
        )
        check_option_names(self.engine, self.engine_options)

    @property
    def effective_hard_rss_mb(self) -> float | None:
        """The hard limit: as given, else twice the soft limit, else none."""
        if self.hard_rss_mb is not None:
            return self.hard_rss_mb
        return None if self.max_rss_mb is None else 2 * self.max_rss_mb

    @property
    def effective_spares(self) -> int:
        """The spares: as given, else 1 with ``warm_spares`` or a core the workers leave
        free, else 0. With 2 workers on 2 cores a spare left images/s unchanged, took p99
        while recycling from 1.54x steady to 1.25x, and cost 13-18% more peak memory
        (docs/benchmarks.md): the default keeps the memory."""
        if self.spares is not None:
            return self.spares
        return 1 if self.warm_spares or self.workers < _usable_cores() else 0

    @property
    def effective_prefetch_below_s(self) -> float:
        """``prefetch_below_s``, or 0 (no job sent ahead) without a ``job_timeout``: a job
        cannot be taken back from a worker's pipe, so behind a job that hangs it would wait
        as long as the hang, for ever, while other workers idle."""
        return self.prefetch_below_s if self.job_timeout is not None else 0.0

    @property
    def page_jobs(self) -> PageJobs | None:
        """How this pool splits documents; ``None``: it does not (turned off, an engine
        that cannot read page spans, or an export that cannot be merged)."""
        engine = resolve_engine(self.engine)
        if not (self.split_pages and getattr(engine, "reads_page_spans", False)):
            return None
        try:
            exports = set(parse_formats(self.engine_options.get("exports") or ()))
        except (TypeError, ValueError):  # the engine refuses them at start
            return None
        if not exports <= MERGEABLE:
            return None
        return PageJobs(self.pages_per_job, self.split_min_pages, self.limits)

    @property
    def limits(self) -> InputLimits:
        """What a worker checks of each input before its engine reads it."""
        return InputLimits(self.max_pixels or None, self.max_pages)

    @property
    def merged_exports(self) -> tuple[ExportFormat, ...]:
        """The exports a split document's page jobs are merged into (none when not split)."""
        if self.page_jobs is None:
            return ()
        return parse_formats(self.engine_options.get("exports") or ())

    @property
    def window(self) -> int:
        """How many jobs ``imap`` keeps submitted at once."""
        return self.max_in_flight or 3 * (self.workers + self.effective_spares)


_DURATIONS = (
    "job_timeout",
    "start_timeout",
    "kill_grace",
    "retire_grace",
    "rss_sample_interval",
    "prefetch_below_s",
)

LONGEST_WAIT_S = 7 * 24 * 3600.0
"""The longest duration a setting may hold (a week): the supervisor sleeps until its next
deadline, and the system's waits refuse much longer ones (``poll`` counts milliseconds in
a C int, 24.8 days); ``None`` is the way to say "no limit"."""


LARGEST_MB = 1024.0 * 1024
"""The largest amount of memory in MB a setting may hold (a terabyte): counted in bytes, a
much larger one overflows."""


def check_types(
    settings: Any, durations: Collection[str] = (), sizes_mb: Collection[str] = ()
) -> None:
    """``TypeError`` for a field of the dataclass ``settings`` whose value is not of its
    declared type (a ``bool`` is not an ``int``, an ``int`` is a ``float``); ``ValueError``
    for a number that is not finite, a duration in ``durations`` past ``LONGEST_WAIT_S``,
    or a size in ``sizes_mb`` past ``LARGEST_MB``. Without it a wrong type fails far from
    its cause, inside the supervisor's thread, and takes the pool with it."""
    hints = typing.get_type_hints(type(settings))
    for setting in dataclasses.fields(settings):
        name, value = setting.name, getattr(settings, setting.name)
        kinds = typing.get_args(hints[name]) if _is_union(hints[name]) else (hints[name],)
        if not any(_fits(value, kind) for kind in kinds):
            expected = " or ".join(map(_kind_name, kinds))
            raise TypeError(f"{name} must be {expected}, not {type(value).__name__} {value!r}")
        if isinstance(value, numbers.Real) and not math.isfinite(value):
            unlimited = " (None: no limit)" if type(None) in kinds else ""
            raise ValueError(f"{name} must be a finite number{unlimited}")
        if name in durations and value is not None and value > LONGEST_WAIT_S:
            raise ValueError(f"{name} must be {LONGEST_WAIT_S:.0f} s (a week) at most")
        if name in sizes_mb and value is not None and value > LARGEST_MB:
            raise ValueError(f"{name} must be {LARGEST_MB:.0f} MB (a terabyte) at most")


_KIND_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    dict: "a dict",
    tuple: "a tuple",
}


def _kind_name(kind: Any) -> str:
    if kind is type(None):
        return "None"
    origin = _origin(kind)
    return _KIND_NAMES.get(origin, f"a {getattr(origin, '__name__', origin)}")


def _origin(kind: Any) -> Any:
    return typing.get_origin(kind) or kind


def _fits(value: Any, kind: Any) -> bool:
    kind = _origin(kind)
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind in (int, float):  # numpy's numbers too
        accepted = numbers.Real if kind is float else numbers.Integral
        return isinstance(value, accepted) and not isinstance(value, bool)
    if kind is dict:
        return isinstance(value, Mapping)
    return not isinstance(kind, type) or isinstance(value, kind)


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


ENV_PREFIX = "OCRPOOL_"


def env_name(setting: str) -> str:
    """The environment variable of a setting: ``max_jobs_per_worker`` ->
    ``OCRPOOL_MAX_JOBS_PER_WORKER``."""
    return ENV_PREFIX + setting.upper()


def from_environment(
    settings: type[Any], environ: Mapping[str, str], only: Collection[str] | None = None
) -> dict[str, Any]:
    """The fields of the dataclass ``settings`` (or just those in ``only``) that
    ``environ`` sets, as ``OCRPOOL_<FIELD>``, each read as its field's type, all checked
    together by ``settings`` itself. An empty variable is unset; ``none`` sets an optional
    field to ``None``; dict fields (engine options) are not read. ``ValueError`` names the
    variable of a value that does not fit."""
    hints = typing.get_type_hints(settings)
    values: dict[str, Any] = {}
    for setting in dataclasses.fields(settings):
        name, raw = setting.name, environ.get(env_name(setting.name), "")
        if raw == "" or (only is not None and name not in only):
            continue
        kinds = typing.get_args(hints[name]) if _is_union(hints[name]) else (hints[name],)
        if dict in {typing.get_origin(kind) or kind for kind in kinds}:
            continue
        try:
            values[name] = _read(raw, kinds)
        except ValueError as error:
            raise ValueError(f"{env_name(name)}={raw!r}: {error}") from None
    try:
        settings(**values)
    except ValueError as error:
        raise ValueError(f"{', '.join(map(env_name, values))}: {error}") from None
    return values


def _is_union(hint: Any) -> bool:
    return isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union


def _read(raw: str, kinds: tuple[Any, ...]) -> Any:
    if type(None) in kinds and raw.lower() == "none":
        return None
    kind = next(kind for kind in kinds if kind is not type(None))
    if typing.get_origin(kind) is tuple:  # a list: comma-separated
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind is bool:
        if raw.lower() not in _BOOLEANS:
            raise ValueError("expected true or false")
        return _BOOLEANS[raw.lower()]
    try:
        return kind(raw)
    except ValueError:
        expected = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
        suffix = " or none" if type(None) in kinds else ""
        raise ValueError(f"expected {expected}{suffix}") from None
