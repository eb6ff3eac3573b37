"""A service nothing can brick: the real server on loopback with the fake engine, whose
starts fail while a marker file exists (``fail_start_while``), so a test breaks the pool's
engines and then heals them by removing the file."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from test_batch_admission import png_header
from test_service import error_of

from tests.support.served import HttpReply, ServiceProcess, wait_until

ONE_WORKER = ["--engine", "fake", "--workers", "1", "--spares", "0"]


def _state(served: ServiceProcess) -> str:
    return str(served.request("GET", "/readyz").json()["state"])


def _refused_while_broken(reply: HttpReply) -> None:
    """503 with the engines' error and a Retry-After, as long as the pool is broken."""
    error_of(reply, 503, "EngineStartError")
    assert int(reply.headers["retry-after"]) >= 1


@pytest.mark.slow
def test_engine_options_refused_at_start_up_end_the_service_with_exit_2(
    tmp_path: Path,
) -> None:
    """No rebuild can change them: the service says so and exits, for its process manager
    to report, instead of rebuilding for ever."""
    args = [*ONE_WORKER, "--engine-option", "fail_start=refuse", "--body-timeout", "600"]
    with ServiceProcess([*args, "--engine-option", "start_delay=5"], tmp_path / "log") as served:
        wait_until(lambda: b"ocrpool serve: http" in served.log.read_bytes(), 60, "the URL")
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as stalled:
            stalled.sendall(b"POST /v1/ocr HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab")
            # it must not hold the exit until the drain timeout (30 s) + 10 s
            assert served.process.wait(20) == 2, served.log_tail()
            assert stalled.makefile("rb").read().startswith(b"HTTP/1.1 503 ")
        said = served.log.read_text()
    assert "ocrpool serve: error: the 'fake' engine refused its options: fake engine" in said
    assert said.count("options refused as asked") == 2, said  # the service's state, the exit
    assert "building a new pool" not in said


@pytest.mark.slow
def test_an_engine_outage_is_503_then_the_pool_is_rebuilt(tmp_path: Path) -> None:
    """Broken from the start: 503 and readyz 503; past --unhealthy-after, healthz 503 too;
    once starts work again, a rebuilt pool serves."""
    outage = tmp_path / "outage"
    outage.touch()
    args = [*ONE_WORKER, "--engine-option", f"fail_start_while={outage}"]
    with ServiceProcess([*args, "--unhealthy-after", "3"], tmp_path / "log") as served:
        served.start(ready=False)
        wait_until(lambda: _state(served) == "broken", 60, "broken")
        assert served.request("GET", "/readyz").status == 503
        _refused_while_broken(served.request("POST", "/v1/ocr", png_header(8, 8)))
        assert served.request("GET", "/healthz").status == 200
        wait_until(lambda: served.request("GET", "/healthz").status == 503, 60, "unhealthy")
        assert served.request("GET", "/healthz").json()["status"] == "broken"
        outage.unlink()
        wait_until(lambda: served.request("GET", "/readyz").status == 200, 60, "rebuilt")
        assert served.request("GET", "/healthz").status == 200
        assert served.request("POST", "/v1/ocr", png_header(8, 8)).status == 200
        assert served.stop() == 0


@pytest.mark.slow
@pytest.mark.parametrize("fail_start", ["raise", "refuse"])
def test_a_pool_that_breaks_while_serving_is_rebuilt(tmp_path: Path, fail_start: str) -> None:
    """A crash needs a new worker, whose engine cannot start: the pool breaks, the service
    answers 503 (never 500), and serves again once starts work. Options refused once they
    have served are the machine's doing too (a file an option names vanished): the same
    ``EngineStartError``, never the configuration error that ends the service at start-up."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "crash.png").write_bytes(png_header(8, 8))
    outage = tmp_path / "outage"
    args = [*ONE_WORKER, "--retries", "0", "--allow-path-prefix", str(images)]
    args += ["--engine-option", f"fail_start_while={outage}"]
    args += ["--engine-option", f"fail_start={fail_start}", "-v"]  # -v: the rebuilds
    with ServiceProcess(args, tmp_path / "log") as served:
        served.start()
        outage.touch()
        crash = served.request("POST", f"/v1/ocr?path={images / 'crash.png'}")
        error_of(crash, 502, "WorkerCrashed")
        wait_until(lambda: _state(served) == "broken", 60, "broken")
        _refused_while_broken(served.request("POST", "/v1/ocr", png_header(8, 8)))
        rebuilt_once = b"building a new pool in 2 s"  # a new pool failed too
        wait_until(lambda: rebuilt_once in served.log.read_bytes(), 60, "a failed rebuild")
        _refused_while_broken(served.request("POST", "/v1/ocr", png_header(8, 8)))
        assert served.request("GET", "/readyz").status == 503
        outage.unlink()
        wait_until(lambda: served.request("GET", "/readyz").status == 200, 60, "rebuilt")
        assert served.request("POST", "/v1/ocr", png_header(8, 8)).status == 200
        assert served.stop() == 0


@pytest.mark.slow
def test_crashing_inputs_from_one_client_cost_another_client_nothing(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for number in range(30):
        (images / f"crash-{number:02d}.png").write_bytes(png_header(8, 8))
    args = ["--engine", "fake", "--workers", "2", "--spares", "1", "--retries", "1"]
    with ServiceProcess([*args, "--allow-path-prefix", str(images)], tmp_path / "log") as served:
        served.start()
        crashing, good = served.client(), served.client()
        for number in range(30):
            path = images / f"crash-{number:02d}.png"
            error_of(crashing.request("POST", f"/v1/ocr?path={path}"), 502, "WorkerCrashed")
        assert good.request("POST", "/v1/ocr", png_header(8, 8)).status == 200
        crashing.close()
        good.close()
        assert served.stop() == 0
