"""``ocrpool serve`` end to end: the real server in a subprocess on a loopback port, spoken
to over HTTP. Every endpoint and every error status, with the fake engine (file names
containing ``crash`` or ``hang`` make its worker segfault or hang)."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import make_document
from jsonschema import Draft202012Validator
from test_batch_admission import png_header

from ocrpool.batch.records import InputFile, Record
from ocrpool.cli import main
from ocrpool.results import OcrResult
from ocrpool.service.app import Service
from ocrpool.service.backpressure import MAX_RETRY_AFTER_S
from ocrpool.service.errors import PathRefused
from ocrpool.service.security import PathPolicy
from ocrpool.service.settings import ServiceSettings
from tests.support.served import HttpReply, ServiceProcess, wait_until

TOKEN = "s3cret-token"
MAX_BODY_MB = 1
RECORD_FIELDS = set(Record(InputFile("x", 1, None), "png", OcrResult("x")).to_dict())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``allowed/`` (the path prefix) with images, and an image outside it."""
    root = tmp_path_factory.mktemp("service")
    allowed = root / "allowed"
    allowed.mkdir()
    for name in ("page.png", "crash.png", "hang.png"):
        (allowed / name).write_bytes(png_header(8, 8))
    (root / "outside.png").write_bytes(png_header(8, 8))
    (allowed / "escape.png").symlink_to(root / "outside.png")
    return root


@pytest.fixture(scope="module")
def server(files: Path) -> Iterator[ServiceProcess]:
    args = ["--engine", "fake", "--workers", "2", "--spares", "1", "--timeout", "3"]
    args += ["--engine-option", "fault_page=3", "--engine-option", "page_fault=raise"]
    args += ["--max-body-mb", str(MAX_BODY_MB), "--allow-path-prefix", str(files / "allowed")]
    with ServiceProcess(
        args, files / "server.log", env={"OCRPOOL_TOKEN": TOKEN}, token=TOKEN
    ) as served:
        yield served.start()


def error_of(reply: HttpReply, status: int, kind: str) -> dict[str, object]:
    """The error body of ``reply``, checked: status, type, a message, no stack trace."""
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["type"] == kind and body["message"]
    assert "stderr_tail" not in body and b"Traceback" not in reply.body
    return dict(body)


def test_probes_answer_without_a_token(server: ServiceProcess) -> None:
    assert server.request("GET", "/healthz").json() == {"status": "ok"}
    ready = server.request("GET", "/readyz")
    assert ready.status == 200
    assert ready.json() == {
        "ready": True,
        "state": "serving",
        "pool": "running",
        "workers_ready": 2,
    }


def test_unknown_routes_and_methods_answer_in_the_same_error_shape(
    server: ServiceProcess,
) -> None:
    error_of(server.request("GET", "/v2/nothing"), 404, "NotFound")
    error_of(server.request("GET", "/v1/ocr"), 405, "MethodNotAllowed")


def test_every_other_route_needs_the_bearer_token(server: ServiceProcess) -> None:
    for token in ("", "wrong"):
        anonymous = server.client(token=token)
        for method, path in [("POST", "/v1/ocr"), ("POST", "/v1/jobs"), ("GET", "/metrics")]:
            reply = anonymous.request(method, path, png_header(8, 8))
            error_of(reply, 401, "Unauthorized")
            assert reply.headers["www-authenticate"] == "Bearer"
        anonymous.close()


def test_ocr_of_raw_bytes_returns_the_run_record(server: ServiceProcess) -> None:
    image = png_header(8, 8)
    reply = server.request("POST", "/v1/ocr?name=scan.png", image)
    assert reply.status == 200, reply.body
    record = reply.json()
    assert set(record) == RECORD_FIELDS
    assert record["ok"] is True and record["error"] is None
    assert (record["path"], record["size"], record["format"]) == ("scan.png", len(image), "png")
    assert record["pages"] == [{"text": f"{len(image)} bytes", "empty": False}]
    assert record["attempts"][0]["outcome"] == "ok"
    detailed = server.request("POST", "/v1/ocr?detail=true", image).json()
    assert detailed["pages"] == [{"text": f"{len(image)} bytes", "empty": False, "lines": []}]
    assert detailed["path"] == f"<{len(image)} bytes>"


def test_a_partial_document_is_answered_with_its_pages(
    server: ServiceProcess, tmp_path: Path
) -> None:
    """Page 3 of every document fails (the server's ``fault_page``): the answer is the
    record, ``ok`` false and ``partial`` true, with the other pages' text."""
    document = Path(make_document(tmp_path / "doc.tif", 5)).read_bytes()
    reply = server.request("POST", "/v1/ocr?name=doc.tif", document)
    assert reply.status == 200, reply.body
    record = reply.json()
    assert (record["ok"], record["partial"], record["failed_pages"]) == (False, True, [3])
    assert record["error"]["type"] == "PagesFailed"
    assert record["pages"][2]["error"]["type"] == "EngineError"
    assert len(record["pages"]) == 5 and all(
        p["text"] for i, p in enumerate(record["pages"]) if i != 2
    )


def test_ocr_of_a_multipart_upload(server: ServiceProcess) -> None:
    boundary = uuid.uuid4().hex
    image = png_header(8, 8)
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="form.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    [record] = server.request("POST", "/v1/ocr", body, headers).json()  # a form is a batch
    assert (record["ok"], record["path"], record["size"]) == (True, "form.png", len(image))
    broken = server.request("POST", "/v1/ocr", b"--nope\r\n", headers)
    error_of(broken, 400, "BadRequest")


def test_a_path_inside_the_prefix_is_read(server: ServiceProcess, files: Path) -> None:
    page = files / "allowed" / "page.png"
    record = server.request("POST", f"/v1/ocr?path={page}").json()
    assert record["ok"] is True
    assert record["pages"] == [{"text": "page", "empty": False}]
    assert (record["path"], record["size"]) == (str(page), page.stat().st_size)
    assert record["mtime"] == page.stat().st_mtime


def test_paths_outside_the_prefix_are_refused(server: ServiceProcess, files: Path) -> None:
    allowed = files / "allowed"
    for path in [
        files / "outside.png",
        allowed / "escape.png",  # a symlink leading out
        f"{allowed}/../outside.png",
        "allowed/page.png",
        "/etc/passwd",
    ]:
        body = error_of(server.request("POST", f"/v1/ocr?path={path}"), 403, "PathRefused")
        assert body["path"] == str(path)
    both = server.request("POST", f"/v1/ocr?path={allowed / 'page.png'}", png_header(8, 8))
    error_of(both, 400, "BadRequest")


def test_inputs_that_are_not_images_and_bombs_are_422(server: ServiceProcess) -> None:
    error_of(server.request("POST", "/v1/ocr", b"plain text"), 422, "InvalidInput")
    error_of(server.request("POST", "/v1/ocr", b""), 422, "InvalidInput")
    bomb = error_of(
        server.request("POST", "/v1/ocr", png_header(100_000, 100_000)), 422, "ImageTooLarge"
    )
    assert "decompression bomb" in str(bomb["message"])
    assert (bomb["width"], bomb["height"]) == (100_000, 100_000)


@pytest.mark.slow
def test_a_crash_is_502_and_a_hang_is_504(server: ServiceProcess, files: Path) -> None:
    crash = server.request("POST", f"/v1/ocr?path={files / 'allowed' / 'crash.png'}")
    assert error_of(crash, 502, "WorkerCrashed")["signal"] == "SIGSEGV"
    hang = server.request("POST", f"/v1/ocr?path={files / 'allowed' / 'hang.png'}")
    error_of(hang, 504, "JobTimeout")
    assert server.request("POST", "/v1/ocr", png_header(8, 8)).status == 200


@pytest.mark.slow
def test_a_failed_job_fetched_later_is_answered_as_the_schema_says(
    server: ServiceProcess, files: Path
) -> None:
    """GET /v1/jobs/{id} answers with the job's stored reply: a crash is 502, and the
    OpenAPI document lists it for that route, with the body it has."""
    created = server.request("POST", f"/v1/jobs?path={files / 'allowed' / 'crash.png'}")
    fetched = server.request("GET", f"/v1/jobs/{created.json()['id']}?wait=60")
    error_of(fetched, 502, "WorkerCrashed")
    document = server.request("GET", "/openapi.json").json()
    responses = document["paths"]["/v1/jobs/{id}"]["get"]["responses"]
    assert "502" in responses, sorted(responses)
    body_schema = responses["502"]["content"]["application/json"]["schema"]
    Draft202012Validator({**body_schema, "components": document["components"]}).validate(
        fetched.json()
    )


def test_a_body_over_the_limit_is_413(server: ServiceProcess) -> None:
    too_big = b"\0" * (MAX_BODY_MB * 1024 * 1024 + 1)
    error_of(server.request("POST", "/v1/ocr", too_big), 413, "BodyTooLarge")
    status_line = _post_chunked(server, "/v1/ocr", too_big)
    assert status_line.startswith(b"HTTP/1.1 413"), status_line


def _post_chunked(server: ServiceProcess, path: str, body: bytes) -> bytes:
    """POST without a Content-Length (chunked), so only counting while streaming can tell;
    the status line of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = 64 * 1024
        try:
            for start in range(0, len(body), chunk):
                part = body[start : start + chunk]
                conn.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        return conn.makefile("rb").readline()


def test_async_jobs_create_poll_and_delete(server: ServiceProcess) -> None:
    created = server.request("POST", "/v1/jobs?name=job.png", png_header(8, 8))
    assert created.status == 202
    job_id = created.json()["id"]
    assert created.json() == {"id": job_id, "state": "pending"}
    assert created.headers["location"] == f"/v1/jobs/{job_id}"
    done = server.request("GET", f"/v1/jobs/{job_id}?wait=30")
    assert done.status == 200 and done.json()["path"] == "job.png"
    assert server.request("GET", f"/v1/jobs/{job_id}").json() == done.json()
    assert server.request("DELETE", f"/v1/jobs/{job_id}").status == 204
    error_of(server.request("GET", f"/v1/jobs/{job_id}"), 404, "JobNotFound")
    error_of(server.request("DELETE", f"/v1/jobs/{job_id}"), 404, "JobNotFound")


def test_ocr_with_a_bounded_wait_answers_202_with_a_job(server: ServiceProcess) -> None:
    accepted = server.request("POST", "/v1/ocr?wait=0", png_header(8, 8))
    assert accepted.status == 202
    job = server.request("GET", f"/v1/jobs/{accepted.json()['id']}?wait=30")
    assert job.status == 200 and job.json()["ok"] is True
    for wait in ("-1", "301", "soon", "nan"):
        error_of(
            server.request("POST", f"/v1/ocr?wait={wait}", png_header(8, 8)), 400, "BadRequest"
        )


def test_a_language_name_too_long_to_be_one_is_a_bad_request(server: ServiceProcess) -> None:
    for query in ("language", "spellcheck"):
        error_of(
            server.request("POST", f"/v1/ocr?{query}={'x' * 1_000}", png_header(8, 8)),
            400,
            "BadRequest",
        )


def test_what_cannot_name_a_language_is_a_bad_request(server: ServiceProcess) -> None:
    for query in ("language=", "language=%00", "language=e%20ng", "spellcheck=%0A"):
        reply = server.request("POST", f"/v1/ocr?{query}", png_header(8, 8))
        assert "must be a name" in str(error_of(reply, 400, "BadRequest")["message"])
    assert server.request("POST", "/v1/ocr?spellcheck=", png_header(8, 8)).status == 200


def test_a_parameter_given_twice_is_a_bad_request(server: ServiceProcess, files: Path) -> None:
    """The last value would win silently, where a proxy may have checked the first."""
    page, outside = files / "allowed" / "page.png", files / "outside.png"
    for method, target in [
        ("POST", f"/v1/ocr?path={page}&path={outside}"),
        ("POST", f"/v1/ocr?path={outside}&path={page}"),
        ("POST", "/v1/jobs?language=eng&language=deu"),
        ("GET", "/v1/jobs/x?wait=0&wait=30"),
        ("DELETE", "/v1/jobs/x?kill=true&kill=false"),
    ]:
        body = error_of(server.request(method, target), 400, "BadRequest")
        assert "given more than once" in str(body["message"])
    both = server.request("POST", "/v1/ocr?exports=txt&exports=hocr", png_header(8, 8))
    assert set(both.json()["exports"]) == {"txt", "hocr"}


def test_metrics_in_prometheus_format(server: ServiceProcess) -> None:
    assert server.request("POST", "/v1/ocr", png_header(8, 8)).status == 200
    # the tests before kill workers: their replacements may still be warming
    wait_until(lambda: server.metric("ocrpool_workers_ready") == 2, 30, "2 warm workers")
    error_of(server.client(token="").request("GET", "/metrics"), 401, "Unauthorized")
    reply = server.request("GET", "/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    text = reply.body.decode()
    for name in _documented_metrics():
        assert f"\n# TYPE {name} " in text, name
    for line in [
        'ocrpool_jobs_total{outcome="ok"}',
        'ocrpool_job_duration_seconds_bucket{le="0.005"}',
        "ocrpool_queue_depth 0.0",
        "ocrpool_workers_ready 2.0",
        'ocrpool_worker_exits_total{cause="crash"}',
        'ocrpool_requests_refused_total{reason="Unauthorized"}',
        'ocrpool_service_state{state="serving"} 1.0',
    ]:
        assert line in text, line
    rss_pids = set(re.findall(r'^ocrpool_worker_rss_bytes\{pid="(\d+)"', text, flags=re.M))
    assert len(rss_pids) >= 2  # the warm workers; a spare still starting has no RSS yet
    assert rss_pids <= {str(worker.pid) for worker in server.workers()}


def test_without_a_pool_the_pool_gauges_are_0_not_absent() -> None:
    """Warming up, broken or stopped: an alert on ocrpool_workers_ready < 1 must see 0."""
    service = Service(ServiceSettings(pool={"engine": "fake"}))  # its pool never started
    text = service.metrics.exposition()[0].decode()
    assert "\nocrpool_workers_ready 0.0\n" in text
    assert "\nocrpool_queue_depth 0.0\n" in text
    assert 'ocrpool_service_state{state="starting"} 1.0' in text


def _documented_metrics() -> list[str]:
    """The first column of the service page's metrics table."""
    service = (Path(__file__).parent.parent / "docs/guide/service.md").read_text()
    table = service.split("**Metrics**", 1)[1].split("\n\n", 2)[1]
    names = re.findall(r"^\| `(ocrpool_[a-z_]+)`", table, flags=re.M)
    assert len(names) > 10
    return names


@pytest.mark.slow
def test_queue_full_is_429_and_a_queued_job_can_be_cancelled(tmp_path: Path) -> None:
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--max-queue", "2"]
    # 30 s: every request below comes while the first job runs, however slow the machine
    with ServiceProcess([*args, "--engine-option", "delay=30"], tmp_path / "log") as served:
        served.start()
        running, queued = (served.request("POST", "/v1/jobs", png_header(8, 8)) for _ in "ab")
        assert running.status == queued.status == 202
        full = served.request("POST", "/v1/ocr", png_header(8, 8))
        retry_after = error_of(full, 429, "QueueFull")["retry_after_s"]
        assert full.headers["retry-after"] == str(retry_after)
        assert retry_after == MAX_RETRY_AFTER_S  # no job has finished to measure the drain by
        queued_id, running_id = queued.json()["id"], running.json()["id"]
        wait_until(lambda: served.metric("ocrpool_queue_depth") == 1, 30, "the first job runs")
        error_of(served.request("DELETE", f"/v1/jobs/{running_id}"), 409, "NotCancellable")
        cancelled = served.request("DELETE", f"/v1/jobs/{queued_id}")
        assert cancelled.json() == {"id": queued_id, "state": "cancelled"}
        error_of(served.request("GET", f"/v1/jobs/{queued_id}"), 410, "JobCancelled")
        assert served.request("POST", "/v1/jobs", png_header(8, 8)).status == 202
        killed = served.request("DELETE", f"/v1/jobs/{running_id}?kill=true")
        assert killed.json() == {"id": running_id, "state": "cancelled"}


@pytest.mark.slow
def test_a_stalled_upload_is_408_and_gives_its_queue_slot_back(tmp_path: Path) -> None:
    """A client that sends headers and then nothing holds the only slot until
    ``--body-timeout``; then it gets 408 and the next request is served."""
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--max-queue", "1"]
    with ServiceProcess([*args, "--body-timeout", "1"], tmp_path / "log") as served:
        served.start()
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as stalled:
            stalled.sendall(b"POST /v1/ocr HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            answer = stalled.makefile("rb").read()  # the service closes the connection
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer
        error_of(HttpReply(408, {"content-type": "application/json"}, body), 408, "RequestTimeout")
        assert served.metric("ocrpool_queue_slots_used") == 0
        assert served.request("POST", "/v1/ocr", png_header(8, 8)).status == 200


@pytest.mark.slow
def test_headers_that_never_finish_get_408_and_the_connection_closed(tmp_path: Path) -> None:
    """uvicorn alone kept such connections (slowloris) open for ever; the same deadline
    holds after an answer on a kept-alive connection, and a connection that sent nothing
    is closed without a word."""
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--body-timeout", "1"]
    with ServiceProcess(args, tmp_path / "log") as served:
        served.start()
        address = ("127.0.0.1", served.port)
        with (
            socket.create_connection(address, timeout=30) as half,
            socket.create_connection(address, timeout=30) as silent,
            socket.create_connection(address, timeout=30) as kept,
        ):
            half.sendall(b"POST /v1/ocr HTTP/1.1\r\nHost: x\r\n")
            kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert kept.recv(12) == b"HTTP/1.1 200"
            kept.sendall(b"GET /heal")
            answers = [conn.makefile("rb").read() for conn in (half, silent, kept)]
        for answer in (answers[0], answers[2]):  # kept: the rest of its 200 before
            _, timed_out, reply = answer.partition(b"HTTP/1.1 408 Request Timeout\r\n")
            assert timed_out and b"connection: close\r\n" in reply, answer
            error = json.loads(reply.partition(b"\r\n\r\n")[2])
            assert (error["type"], error["timeout_s"]) == ("RequestTimeout", 1.0)
        assert answers[1] == b""
        assert served.request("GET", "/healthz").status == 200


@pytest.mark.slow
def test_a_queued_job_is_cancelled_when_its_client_hangs_up(tmp_path: Path) -> None:
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--engine-option", "delay=30"]
    with ServiceProcess(args, tmp_path / "log") as served:
        served.start()
        running = served.request("POST", "/v1/jobs", png_header(8, 8))
        image = png_header(8, 8)
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as conn:
            conn.sendall(
                f"POST /v1/ocr HTTP/1.1\r\nHost: x\r\nContent-Length: {len(image)}\r\n\r\n".encode()
                + image
            )
            wait_until(lambda: served.metric("ocrpool_queue_slots_used") == 2, 30, "queued")
        wait_until(
            lambda: served.metric("ocrpool_jobs_total", outcome="cancelled") == 1, 30, "cancelled"
        )
        running_id = running.json()["id"]
        assert served.request("GET", f"/v1/jobs/{running_id}").status == 202  # still running
        killed = served.request("DELETE", f"/v1/jobs/{running_id}?kill=true")
        assert killed.json() == {"id": running_id, "state": "cancelled"}


@pytest.mark.slow
def test_not_ready_while_warming_up_then_ready(tmp_path: Path) -> None:
    args = ["--engine", "fake", "--workers", "1", "--engine-option", "start_delay=6"]
    with ServiceProcess(args, tmp_path / "log") as served:
        served.start(ready=False)
        warming = served.request("GET", "/readyz")
        assert warming.status == 503 and warming.json()["state"] == "starting"
        error_of(served.request("POST", "/v1/ocr", png_header(8, 8)), 503, "NotReady")
        served.start()
        assert served.request("POST", "/v1/ocr", png_header(8, 8)).status == 200


@pytest.mark.slow
def test_an_engine_that_cannot_start_is_503(tmp_path: Path) -> None:
    args = ["--engine", "fake", "--workers", "1", "--engine-option", "fail_start=true"]
    with ServiceProcess(args, tmp_path / "log") as served:
        served.start(ready=False)
        wait_until(
            lambda: served.request("GET", "/readyz").json()["state"] == "broken", 60, "broken"
        )
        assert served.request("GET", "/readyz").status == 503
        error_of(served.request("POST", "/v1/ocr", png_header(8, 8)), 503, "EngineStartError")
        assert served.stop() == 0


@pytest.mark.slow
def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """Bad settings, and a port that cannot be had (uvicorn's own exit was 3)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        in_use = ["--port", str(taken.getsockname()[1])]
        for args in (["--max-queue", "0"], ["--allow-path-prefix", str(tmp_path / "none")], in_use):
            with ServiceProcess(["--engine", "fake", *args], tmp_path / "log") as served:
                assert served.process.wait(60) == 2
                assert "ocrpool serve: error:" in served.log_tail()
                assert "ocrpool serve: http" not in served.log_tail()  # never said it served


@pytest.mark.slow
def test_port_0_serves_on_the_port_the_system_chose_and_says_which(tmp_path: Path) -> None:
    with ServiceProcess(
        ["--engine", "fake", "--workers", "1", "--port", "0"], tmp_path / "log"
    ) as served:
        wait_until(lambda: "ocrpool serve: http" in served.log_tail(), 60, "the banner")
        found = re.search(r"ocrpool serve: http://127\.0\.0\.1:(\d+) ", served.log_tail())
        assert found is not None, served.log_tail()
        served.port = int(found[1])
        assert served.port != 0
        served.start()
        assert served.request("GET", "/readyz").json()["state"] == "serving"
        assert served.stop() == 0


@pytest.mark.parametrize("flag", ["--drain-timeout", "--max-body-mb", "--max-results-mb"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_numbers_that_are_not_finite_are_usage_errors(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["serve", "--engine", "fake", flag, value])
    assert exit.value.code == 2
    assert f"argument {flag}: must be a finite number, not {value}" in capsys.readouterr().err


@pytest.mark.aspose
def test_one_real_aspose_request(tmp_path: Path) -> None:
    image = (Path(__file__).parent / "data" / "phototest.tif").read_bytes()
    args = ["--engine", "aspose", "--workers", "1", "--spares", "0"]
    with ServiceProcess(args, tmp_path / "log") as served:
        reply = served.start().request("POST", "/v1/ocr?name=phototest.tif", image)
        assert served.stop() == 0
    record = reply.json()
    assert reply.status == 200 and record["ok"], record
    assert record["format"] == "tiff" and record["size"] == len(image)
    assert record["pages"][0]["text"].startswith("This is a lot of 12 point text")
    assert record["evaluation_mode"] or "Trial" not in record["pages"][0]["text"]


def test_a_path_replaced_after_its_admission_is_refused_by_the_worker_past_the_limits(
    tmp_path: Path,
) -> None:
    """Admitted as an 8 x 8 PNG while the only worker is stopped, then replaced by a bomb
    or by a long document: the worker's own checks (the pool's ``max_pixels`` and
    ``max_pages``, from ``--max-pixels`` and ``--max-pages``) refuse them."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    bomb, long = allowed / "bomb.png", allowed / "long.tif"
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--max-pages", "5"]
    args += ["--max-pixels", "1000000", "--allow-path-prefix", str(allowed)]
    with ServiceProcess(args, tmp_path / "server.log") as served:
        [worker] = served.start().workers()
        worker.suspend()
        try:
            created = {}
            for path in (bomb, long):
                path.write_bytes(png_header(8, 8))
                created[path] = served.request("POST", f"/v1/jobs?path={path}")
            (tmp_path / "bomb.png").write_bytes(png_header(2_000, 2_000))
            (tmp_path / "bomb.png").replace(bomb)
            Path(make_document(tmp_path / "long.tif", 40)).replace(long)
        finally:
            worker.resume()
        replies = {}
        for path, reply in created.items():
            assert reply.status == 202, reply.body
            replies[path] = served.request("GET", f"/v1/jobs/{reply.json()['id']}?wait=60")
    too_large = error_of(replies[bomb], 422, "ImageTooLarge")
    assert (too_large["width"], too_large["height"], too_large["max_pixels"]) == (
        2_000,
        2_000,
        1_000_000,
    )
    too_long = error_of(replies[long], 413, "DocumentTooLong")
    assert (too_long["pages"], too_long["max_pages"], too_long["input"]) == (40, 5, str(long))


def test_a_link_replaced_while_its_path_is_resolved_is_refused_not_a_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``os.path.realpath`` raises ``EINVAL`` when a symlink it is reading becomes a file
    (seen as one 500 in 1,020 answers while links were swapped)."""
    policy = PathPolicy(str(tmp_path))

    def swapped(path: str) -> str:
        raise OSError(errno.EINVAL, "Invalid argument", path)

    monkeypatch.setattr(os.path, "realpath", swapped)
    with pytest.raises(PathRefused, match="the path cannot be resolved: Invalid argument"):
        policy.resolve(str(tmp_path / "link.png"))
