"""The flags shared by every command that runs a pool (``run``, ``serve``).

Each pool flag maps one to one onto an ``OcrPool`` argument; ``--license``, ``--language``,
the recognition flags and ``--engine-option`` become engine options. Defaults come from
``PoolConfig``, and ``OCRPOOL_<SETTING>`` variables override them (a flag wins over both).
``--max-pixels`` is the admission rule both commands apply before a job is sent. The
backend flags choose where that pool runs: here, or one per actor of a Ray cluster
(``RayOcrPool``).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ocrpool.batch.runner import PoolFactory
from ocrpool.cli.conventions import finite_number
from ocrpool.formats import DEFAULT_MAX_PIXELS
from ocrpool.pool.config import PoolConfig, env_name, from_environment
from ocrpool.pool.executor import OcrPool
from ocrpool.scaleout import RayOcrPool
from ocrpool.scaleout.pool import import_ray
from ocrpool.service.settings import ServiceSettings


class Backend(str, enum.Enum):
    LOCAL = "local"
    RAY = "ray"


_RAY_FLAGS = (
    ("--ray-address", "ray_address"),
    ("--actors", "actors"),
    ("--ship-bytes", "ship_bytes"),
)

SettingFlag = tuple[str, str, Callable[[str], Any], str, str]
"""A flag, the setting it sets, its type, metavar and help."""


_POOL_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PoolConfig)}
_POOL_FLAGS: tuple[SettingFlag, ...] = (  # OcrPool arguments
    ("--workers", "workers", int, "N", "engines working at once (default: CPU cores)"),
    ("--max-jobs", "max_jobs_per_worker", int, "N", "recycle a worker after N jobs (0 = never)"),
    (
        "--max-rss",
        "max_rss_mb",
        finite_number,
        "MB",
        "recycle a worker past MB after a job (0 = never)",
    ),
    (
        "--hard-rss",
        "hard_rss_mb",
        finite_number,
        "MB",
        "kill a worker during a job past MB (default: twice --max-rss)",
    ),
    (
        "--timeout",
        "job_timeout",
        finite_number,
        "SECONDS",
        "stop a job running longer (0 = no limit)",
    ),
    ("--retries", "retries", int, "N", "retries of a job whose worker died"),
    (
        "--spares",
        "spares",
        int,
        "N",
        "replacements warmed ahead of a recycle (default: 1 if the workers leave a core "
        "free, else 0)",
    ),
    ("--engine", "engine", str, "NAME", "aspose, tesseract, fake or package.module:Class"),
    ("--pages-per-job", "pages_per_job", int, "N", "pages in one page job of a split document"),
    (
        "--split-min-pages",
        "split_min_pages",
        int,
        "N",
        "split documents of at least N pages into page jobs",
    ),
)
_ENGINE_OPTION_FLAGS = (
    "license",
    "language",
    "rotate_pages",
    "spellcheck",
    "spellcheck_dictionary",
)
"""Flags that set the engine option of their name when given (the rest keep the engine's
defaults, so an engine without them still starts)."""
_SWITCHES = ("split_pages", "warm_spares")
"""Pool settings with a flag of their own that turns them from their default."""
_ZERO_IS_NO_LIMIT = frozenset({"max_jobs_per_worker", "max_rss_mb", "hard_rss_mb", "job_timeout"})


def add_pool_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``recognition`` and ``pool`` argument groups to ``parser``."""
    recognition = parser.add_argument_group("recognition")
    recognition.add_argument(
        "--rotate-pages",
        action=argparse.BooleanOptionalAction,
        help="turn each page upright (and straighten skew) before recognition "
        "(engine option 'rotate_pages'; aspose default: off, as it adds about a quarter "
        "to recognition's CPU time)",
    )
    recognition.add_argument(
        "--spellcheck",
        metavar="LANG",
        help="add each page's spell-checked text, offline: eng, deu, fra, spa, ... "
        "(engine option 'spellcheck')",
    )
    recognition.add_argument(
        "--spellcheck-dictionary",
        metavar="FILE",
        help="your own words for the spell-check, one 'word frequency' per line "
        "(engine option 'spellcheck_dictionary')",
    )
    pool = parser.add_argument_group("pool")
    add_setting_arguments(pool, _POOL_FLAGS, PoolConfig)
    pool.add_argument(
        "--no-split-pages",
        dest="split_pages",
        action="store_const",
        const=False,
        help="run every multi-page document as one job (default: split into page jobs; "
        f"${env_name('split_pages')})",
    )
    pool.add_argument(
        "--warm-spares",
        dest="warm_spares",
        action="store_const",
        const=True,
        help="keep the spares warm at all times (default: start one just before a worker "
        f"recycles; ${env_name('warm_spares')})",
    )
    pool.add_argument("--license", help="engine license file (engine option 'license')")
    pool.add_argument("--language", help="recognition language (engine option 'language')")
    pool.add_argument(
        "--engine-option",
        action="append",
        default=[],
        type=_engine_option,
        metavar="KEY=VALUE",
        help="engine option; VALUE is read as int, float, true/false or text (repeatable)",
    )


def add_setting_arguments(
    group: argparse._ArgumentGroup, flags: Iterable[SettingFlag], settings: type[Any]
) -> None:
    """The flags of settings of the dataclass ``settings``. Each defaults to ``None``, so a
    flag given is told from one not given (which leaves the setting to its variable); its
    help shows the setting's default and variable."""
    defaults = {f.name: f.default for f in dataclasses.fields(settings)}
    for flag, name, kind, metavar, text in flags:
        default = defaults[name]
        shown = "" if default in (None, dataclasses.MISSING) else f"default: {default}; "
        group.add_argument(
            flag, dest=name, type=kind, metavar=metavar, help=f"{text} ({shown}${env_name(name)})"
        )


def add_max_pixels_argument(parser: argparse.ArgumentParser) -> None:
    """``--max-pixels``: refuse decompression bombs by their header, before any decoder."""
    parser.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        help="refuse images with more pixels than this (0 = no limit) "
        f"(default: {DEFAULT_MAX_PIXELS}; ${env_name('max_pixels')})",
    )


def max_pixels(args: argparse.Namespace, environ: Mapping[str, str]) -> int | None:
    """The admission limit: ``--max-pixels``, else ``$OCRPOOL_MAX_PIXELS`` (the service's
    setting), else the default; ``None`` (no limit) for 0. ``ValueError`` names a bad
    variable, or a negative flag (every image would be over it)."""
    value = args.max_pixels
    if value is not None and value < 0:
        raise ValueError("--max-pixels must be 0 or more (0: no limit)")
    if value is None:
        found = from_environment(ServiceSettings, environ, only=("max_pixels",))
        value = found.get("max_pixels", DEFAULT_MAX_PIXELS)
    return value or None


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``backend`` argument group to ``parser``."""
    backend = parser.add_argument_group("backend")
    backend.add_argument(
        "--backend",
        choices=[b.value for b in Backend],
        default=Backend.LOCAL.value,
        help="run the pool on this machine, or one per actor on a Ray cluster "
        "(default: %(default)s)",
    )
    backend.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="auto (the cluster of this node) or ray://host:port (default: $RAY_ADDRESS, "
        "else a new Ray on this machine)",
    )
    backend.add_argument(
        "--actors",
        type=int,
        metavar="N",
        help="Ray actors, each with --workers workers (default: one per node, sharing its CPUs)",
    )
    backend.add_argument(
        "--ship-bytes",
        action="store_true",
        help="send each file's content to the actors, for nodes that do not share the files",
    )


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """The backend and its options; ``ValueError`` if they do not fit together. With
    ``ray``, Ray must be installed (``RayNotInstalled`` says how)."""
    backend = Backend(args.backend)
    if backend is Backend.LOCAL:
        given = [flag for flag, name in _RAY_FLAGS if getattr(args, name) not in (None, False)]
        if given:
            raise ValueError(f"{', '.join(given)} needs --backend ray")
        return {"backend": backend.value}
    if args.actors is not None and args.actors < 1:
        raise ValueError("actors must be at least 1")
    import_ray()
    return {"backend": backend.value, **{name: getattr(args, name) for _, name in _RAY_FLAGS}}


def pool_factory(backend: dict[str, Any], pool: dict[str, Any]) -> PoolFactory:
    """What creates the pool: ``OcrPool(**pool)``, or ``RayOcrPool`` with the backend's
    options as well. A local pool is not waited for here: its jobs queue while it warms,
    and a stop signal meanwhile is taken within ``WAITING_S``, not once it is warm (the
    wait is code a stop is deferred out of, ``StopSignals``)."""
    options = dict(backend)
    if Backend(options.pop("backend")) is Backend.RAY:
        return lambda: RayOcrPool(**options, **pool)
    return lambda: OcrPool(wait_ready=False, **pool)


def pool_options(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``OcrPool`` arguments: ``PoolConfig``'s defaults of the pool flags, over them
    every setting an ``OCRPOOL_*`` variable of ``environ`` gives, over those the flags
    given. ``ValueError`` if they are invalid (naming a bad variable)."""
    options: dict[str, Any] = {
        name: _POOL_DEFAULTS[name]
        for _, name, *_ in _POOL_FLAGS
        if _POOL_DEFAULTS[name] is not dataclasses.MISSING
    }
    options.update(from_environment(PoolConfig, environ))
    for _, name, *_ in _POOL_FLAGS:
        value = getattr(args, name)
        if value is not None:
            options[name] = (value or None) if name in _ZERO_IS_NO_LIMIT else value
    for name in _SWITCHES:
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    engine_options = dict(args.engine_option)
    for name in _ENGINE_OPTION_FLAGS:
        if getattr(args, name) is not None:
            engine_options[name] = getattr(args, name)
    options["engine_options"] = engine_options
    PoolConfig(**options)
    return options


def _engine_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, parse_value(value)


def parse_value(text: str) -> int | float | bool | str:
    """``42`` -> int, ``0.5`` -> float, ``true``/``false`` (any case) -> bool, else text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
