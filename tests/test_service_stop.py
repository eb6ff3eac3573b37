"""``ocrpool serve`` stops gracefully on SIGTERM: it refuses new connections, lets accepted
jobs finish within ``--drain-timeout`` (or fails them with ``PoolClosed`` past it), stops
its workers, and exits 0 with no process left behind."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from test_batch_admission import png_header

from ocrpool.service.server import AcceptFailureLog
from tests.support.served import ServiceProcess, wait_until


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def _stop_with_requests_in_flight(
    tmp_path: Path,
    delay_s: float,
    drain_timeout_s: float,
    requests: int,
    stops: tuple[signal.Signals, ...] = (signal.SIGTERM,),
) -> tuple[list[int], list[dict[str, object]]]:
    """Start a one-worker server, send ``requests`` sync requests, send it ``stops`` once
    all are accepted (each after the last has closed the listener); the statuses and bodies
    they got. Checks exit 0 and that no child is left."""
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--timeout", "0"]
    args += ["--engine-option", f"delay={delay_s}", "--drain-timeout", str(drain_timeout_s)]
    with ServiceProcess(args, tmp_path / "log") as served, ThreadPoolExecutor(requests) as pool:
        served.start()
        assert served.workers()
        children = psutil.Process(served.pid).children(recursive=True)
        replies = [
            pool.submit(served.request, "POST", "/v1/ocr", png_header(8, 8))
            for _ in range(requests)
        ]
        wait_until(
            lambda: served.metric("ocrpool_queue_slots_used") == requests, 30, "all accepted"
        )
        for stop in stops:
            served.process.send_signal(stop)
            wait_until(lambda: _refuses_connections(served.port), 30, "listener closed")
        answers = [reply.result(timeout=60) for reply in replies]
        assert served.process.wait(60) == 0, served.log_tail()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    return [a.status for a in answers], [a.json() for a in answers]


@pytest.mark.slow
def test_sigterm_drains_accepted_jobs_then_exits_0(tmp_path: Path) -> None:
    statuses, bodies = _stop_with_requests_in_flight(
        tmp_path, delay_s=1.0, drain_timeout_s=60, requests=2
    )
    assert statuses == [200, 200]
    assert all(body["ok"] for body in bodies)


def _start_upload(port: int, body: bytes) -> socket.socket:
    """A connection that has sent a POST /v1/ocr's headers and half of ``body``."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = f"POST /v1/ocr HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    conn.sendall(head.encode() + body[: len(body) // 2])
    return conn


@pytest.mark.slow
def test_a_request_uploading_when_sigterm_comes_is_served(tmp_path: Path) -> None:
    """It was let in before the stop: the drain waits for its upload and runs its job
    (it got ``PoolClosed`` when the stop came between its first byte and its hand-over)."""
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--drain-timeout", "60"]
    with ServiceProcess(args, tmp_path / "log") as served:
        served.start()
        image = png_header(8, 8)
        with _start_upload(served.port, image) as conn:
            wait_until(lambda: served.metric("ocrpool_queue_slots_used") == 1, 30, "let in")
            served.process.send_signal(signal.SIGTERM)
            wait_until(lambda: _refuses_connections(served.port), 30, "listener closed")
            conn.sendall(image[len(image) // 2 :])
            answer = conn.makefile("rb").read()  # the service closes the connection
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["ok"] is True
        assert served.process.wait(60) == 0, served.log_tail()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("drain_timeout_s", "stops"),
    [(1.0, (signal.SIGTERM,)), (600.0, (signal.SIGTERM, signal.SIGINT))],
)
def test_a_stalled_upload_gets_pool_closed_at_the_drain_deadline_or_the_second_signal(
    tmp_path: Path, drain_timeout_s: float, stops: tuple[signal.Signals, ...]
) -> None:
    """Not at ``--body-timeout``: it held the stop until uvicorn's own deadline (the drain
    timeout + 10 s), which cut it off with a plain 500 and a traceback."""
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--body-timeout", "600"]
    args += ["--drain-timeout", str(drain_timeout_s)]
    with ServiceProcess(args, tmp_path / "log") as served:
        served.start()
        with _start_upload(served.port, png_header(8, 8)) as conn:
            wait_until(lambda: served.metric("ocrpool_queue_slots_used") == 1, 30, "let in")
            for stop in stops:
                served.process.send_signal(stop)
                wait_until(lambda: _refuses_connections(served.port), 30, "listener closed")
            answer = conn.makefile("rb").read()
        assert served.process.wait(30) == 0, served.log_tail()
        log = served.log.read_text()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), answer
    assert json.loads(body)["type"] == "PoolClosed"
    assert "Traceback" not in log


@pytest.mark.slow
def test_sigterm_while_the_workers_warm_up_stops_within_the_drain_timeout(
    tmp_path: Path,
) -> None:
    """A pool still starting holds no job: stopping shuts it down at once rather than
    wait for its engines (a minute here) past ``--drain-timeout``."""
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--drain-timeout", "1"]
    with ServiceProcess([*args, "--engine-option", "start_delay=60"], tmp_path / "log") as served:
        served.start(ready=False)
        wait_until(lambda: bool(served.workers()), 30, "a worker starts")
        children = psutil.Process(served.pid).children(recursive=True)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(20) == 0, served.log_tail()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []


@pytest.mark.slow
def test_past_the_drain_timeout_jobs_fail_with_pool_closed(tmp_path: Path) -> None:
    statuses, bodies = _stop_with_requests_in_flight(
        tmp_path, delay_s=120.0, drain_timeout_s=0.5, requests=2
    )
    assert statuses == [503, 503]
    assert {body["type"] for body in bodies} == {"PoolClosed"}


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_fails_the_jobs_left_at_once_and_exits_0(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Without waiting for the drain timeout or the jobs (uvicorn's own second Ctrl-C cut
    the requests off with a 500 and left the process waiting on the pool)."""
    statuses, bodies = _stop_with_requests_in_flight(
        tmp_path, delay_s=600.0, drain_timeout_s=600, requests=2, stops=(stop, stop)
    )
    assert statuses == [503, 503]
    assert {body["type"] for body in bodies} == {"PoolClosed"}


def test_a_sigterm_as_soon_as_the_url_is_printed_is_not_lost(tmp_path: Path) -> None:
    """It may come before uvicorn handles signals: it is kept for it, not ignored."""
    for attempt in range(3):
        log = tmp_path / f"log{attempt}"
        with ServiceProcess(["--engine", "fake", "--workers", "1"], log) as served:
            wait_until(lambda: b"ocrpool serve: http" in served.log.read_bytes(), 60, "the URL")
            served.process.send_signal(signal.SIGTERM)
            assert served.process.wait(30) == 0, served.log_tail()


def test_accepts_refused_for_want_of_descriptors_are_logged_once_in_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """asyncio logged each refused accept with a traceback, once per slot of the listen
    backlog: 52 MB of log in 10 s, then a ``ValueError`` per retry left at exit."""
    now = [0.0]
    passed_on: list[dict[str, object]] = []
    handler = AcceptFailureLog(
        lambda loop, context: passed_on.append(context), every_s=10.0, clock=lambda: now[0]
    )
    loop = asyncio.new_event_loop()
    refused = {
        "message": "socket.accept() out of system resource",
        "exception": OSError(errno.EMFILE, "Too many open files"),
    }
    try:
        with caplog.at_level(logging.WARNING, logger="ocrpool"):
            for _ in range(5000):
                handler(loop, refused)
            now[0] = 10.0
            handler(loop, refused)
            retry = loop.call_later(1, loop._start_serving)  # type: ignore[attr-defined]
            handler(loop, {"exception": ValueError("Invalid file descriptor: -1"), "handle": retry})
            retry.cancel()
            other = {"message": "something else", "exception": RuntimeError("boom")}
            handler(loop, other)
    finally:
        loop.close()
    said = [r.getMessage() for r in caplog.records if "cannot accept" in r.getMessage()]
    assert len(said) == 2
    assert "(1 refused" in said[0] and "(5000 refused" in said[1]
    assert passed_on == [other]
