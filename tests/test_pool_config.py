"""Settings are checked against their declared types where they are made: a wrong one
must fail in the caller's thread, naming the setting, never later in the supervisor."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy
import pytest
from fakes import fake_pool, make_inputs

from ocrpool import OcrPool, PoolConfig
from ocrpool.cli import main
from ocrpool.pool.config import LONGEST_WAIT_S
from ocrpool.scaleout import RayOcrPool
from ocrpool.service.settings import ServiceSettings


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("workers", 2.5, "workers must be an integer, not float 2.5"),
        ("workers", "2", "workers must be an integer, not str '2'"),
        ("workers", True, "workers must be an integer, not bool True"),
        ("max_jobs_per_worker", 2.5, "max_jobs_per_worker must be an integer or None"),
        ("spares", 0.5, "spares must be an integer or None"),
        ("job_timeout", "30", "job_timeout must be a number or None, not str '30'"),
        ("split_pages", "no", "split_pages must be true or false, not str 'no'"),
        ("engine", None, "engine must be a string, not NoneType None"),
        ("engine_options", None, "engine_options must be a dict, not NoneType None"),
        ("engine_options", [("delay", 1)], "engine_options must be a dict, not list"),
    ],
)
def test_a_setting_of_the_wrong_type_is_a_type_error_naming_it(
    setting: str, value: Any, says: str
) -> None:
    with pytest.raises(TypeError, match=f"^{_literal(says)}"):
        PoolConfig(**{"engine": "fake", setting: value})


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("job_timeout", math.inf, r"job_timeout must be a finite number \(None: no limit\)"),
        ("max_rss_mb", math.nan, r"max_rss_mb must be a finite number \(None: no limit\)"),
        ("start_timeout", math.inf, "start_timeout must be a finite number"),
        ("kill_grace", math.inf, "kill_grace must be a finite number"),
        ("job_timeout", 1e10, r"job_timeout must be 604800 s \(a week\) at most"),
        ("retire_grace", LONGEST_WAIT_S + 1, "retire_grace must be 604800 s"),
    ],
)
def test_a_duration_past_what_the_system_can_wait_is_refused(
    setting: str, value: float, says: str
) -> None:
    """Each of these was taken, and killed the supervisor when it slept until the
    deadline (``job_timeout=1e10`` with no memory limit: ``OverflowError`` from ``select``)
    or stopped a worker (``kill_grace=inf``)."""
    with pytest.raises(ValueError, match=f"^{says}"):
        PoolConfig(engine="fake", **{setting: value})


def test_the_longest_duration_allowed_is_one_the_supervisor_can_sleep_until(
    tmp_path: Path,
) -> None:
    """With no memory limit to sample, a running job's deadline is the supervisor's only
    wake-up: it sleeps ``job_timeout`` at once."""
    (path,) = make_inputs(tmp_path, ["slow.png"])
    with fake_pool(
        workers=1, job_timeout=LONGEST_WAIT_S, max_rss_mb=None, engine_options={"delay": 0.5}
    ) as pool:
        result = pool.submit(path).result(timeout=30)
        assert result.ok and result.text == "slow"
        assert pool.stats().state == "running"


def test_numbers_of_other_number_types_are_taken() -> None:
    config = PoolConfig(engine="fake", workers=numpy.int64(3), job_timeout=numpy.float32(2.5))
    assert config.workers == 3 and config.job_timeout == 2.5


def test_a_config_passed_where_workers_go_says_how_to_pass_it() -> None:
    with pytest.raises(TypeError, match=r"OcrPool\(config=\.\.\.\)"):
        OcrPool(PoolConfig(engine="fake"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "error", "says"),
    [
        ({"actors": 1.5}, TypeError, "actors must be an integer or None, not float 1.5"),
        ({"ship_bytes": "yes"}, TypeError, "ship_bytes must be true or false"),
        ({"max_in_flight_mb": math.inf}, ValueError, "max_in_flight_mb must be a finite number"),
        ({"actor_retries": -1}, ValueError, "actor_retries and actor_restarts must be 0 or more"),
        ({"workers": 0}, ValueError, "workers must be at least 1"),  # not: the cluster's CPUs
    ],
)
def test_ray_pool_arguments_are_checked_before_ray_starts(
    arguments: dict[str, Any], error: type[Exception], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")

    def no_ray() -> None:
        raise AssertionError("Ray was imported to start: an argument went unchecked")

    monkeypatch.setattr("ocrpool.scaleout.pool.import_ray", no_ray)
    with pytest.raises(error, match=f"^{_literal(says)}"):
        RayOcrPool(engine="fake", **arguments)
    assert not ray.is_initialized()


@pytest.mark.parametrize(
    ("setting", "value", "error", "says"),
    [
        ("port", 80.5, TypeError, "port must be an integer, not float 80.5"),
        ("cors_origins", ["https://a.example"], TypeError, "cors_origins must be a tuple"),
        ("access_log", "yes", TypeError, "access_log must be true or false"),
        ("drain_timeout_s", 1e12, ValueError, "drain_timeout_s must be 604800 s (a week) at most"),
        ("max_body_mb", 1e308, ValueError, "max_body_mb must be 1048576 MB (a terabyte) at most"),
    ],
)
def test_service_settings_are_checked_the_same_way(
    setting: str, value: Any, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=f"^{_literal(says)}"):
        ServiceSettings(**{setting: value})


@pytest.mark.parametrize("flag", ["--timeout", "--max-rss", "--hard-rss"])
def test_a_flag_given_a_number_that_is_not_finite_is_named(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit) as exit:
        main(["run", str(tmp_path), "-o", str(out), "--engine", "fake", flag, "inf"])
    assert exit.value.code == 2
    assert f"argument {flag}: must be a finite number, not inf" in capsys.readouterr().err
    assert not out.exists()


def _literal(text: str) -> str:
    return "".join("\\" + c if c in r"\.^$*+?{}[]|()" else c for c in text)
