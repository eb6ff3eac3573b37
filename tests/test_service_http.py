"""``ocrpool serve`` as HTTP clients meet it: the schema and a fuzzer held to it, every
output (exports as bodies, records, batches), every input form, killing a running job,
CORS, ``Allow``, the access log, the process metrics and the Grafana dashboard."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from fakes import make_document
from openapi_spec_validator import validate
from pypdf import PdfReader
from test_batch_admission import png_header

from ocrpool.error_codes import http_status_of
from ocrpool.errors import (
    EngineError,
    ImageTooLarge,
    JobCancelled,
    JobTimeout,
    LicenseRejected,
    MemoryLimitExceeded,
    OcrPoolError,
    PoolClosed,
    ResourceUnavailable,
    WorkerCrashed,
)
from ocrpool.service.app import Service
from ocrpool.service.backpressure import MAX_RETRY_AFTER_S, MIN_RETRY_AFTER_S, Slots
from ocrpool.service.errors import QueueFull
from ocrpool.service.settings import ServiceSettings
from tests.support.served import ServiceProcess, wait_until

TOKEN = "t0ken"
MAX_PAGES = 4
"""The server's --max-pages: the batch test's inputs hold exactly this many pages."""
ORIGIN = "https://app.example"
DASHBOARD = Path(__file__).parent.parent / "deploy" / "grafana" / "ocrpool-dashboard.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("http") / "server.log"
    args = ["--engine", "fake", "--workers", "2", "--spares", "0", "--access-log"]
    args += ["--cors-origin", ORIGIN, "--timeout", "30", "--split-min-pages", "2"]
    args += ["--max-pages", str(MAX_PAGES)]
    with ServiceProcess(args, log, env={"OCRPOOL_TOKEN": TOKEN}, token=TOKEN) as served:
        yield served.start()


def _multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, dict[str, str]]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files
    )
    return body + f"--{boundary}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={boundary}"
    }


# ---- the schema -----------------------------------------------------------------------


def test_the_schema_is_valid_openapi_3_1_with_every_error_under_its_status() -> None:
    document = Service(ServiceSettings(pool={"engine": "fake"}, token="x")).asgi().openapi()
    validate(document)
    assert document["openapi"].startswith("3.1")
    models = document["components"]["schemas"]
    responses = document["paths"]["/v1/ocr"]["post"]["responses"]
    for status, response in responses.items():
        refs = re.findall(r'"#/components/schemas/(\w+)"', json.dumps(response))
        for name in refs:
            kind = _error_class(name)
            if kind is not None:
                assert str(http_status_of(kind)) == status, name
    assert {"QueueFull", "BodyTooLarge", "TooManyPages", "WorkerCrashed"} <= set(models)
    assert set(models["TooManyPages"]["required"]) >= {"type", "message", "pages", "limit"}
    for route in ("/v1/ocr", "/v1/jobs"):
        assert "TooManyPages" in document["paths"][route]["post"]["responses"]["413"]["description"]
    assert set(models["ImageTooLarge"]["required"]) >= {"type", "message", "width", "height"}
    assert "stderr_tail" not in models["WorkerCrashed"]["properties"]
    assert responses["429"]["headers"].keys() == {"Retry-After"}
    assert {"application/pdf", "text/html", "application/json"} <= set(responses["200"]["content"])


def test_every_answer_a_stored_job_can_have_is_documented_where_it_is_fetched() -> None:
    """GET /v1/jobs/{id} answers with the job's reply, as POST /v1/ocr does: every job
    error is under its status there too (503 has ResourceUnavailable, LicenseRejected)."""
    document = Service(ServiceSettings(pool={"engine": "fake"})).asgi().openapi()
    fetch = document["paths"]["/v1/jobs/{id}"]["get"]["responses"]
    kinds = (EngineError, ResourceUnavailable, LicenseRejected, JobTimeout, WorkerCrashed)
    for kind in (*kinds, MemoryLimitExceeded, JobCancelled, ImageTooLarge, PoolClosed):
        assert kind.__name__ in fetch[str(http_status_of(kind))]["description"], kind


def _error_class(name: str) -> type[OcrPoolError] | None:
    """The error class called ``name``, if it is one."""
    kinds = [OcrPoolError]
    for kind in kinds:
        if kind.__name__ == name:
            return kind
        kinds.extend(kind.__subclasses__())
    return None


@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_no_answer_off_the_schema(tmp_path: Path) -> None:
    """Every generated request (examples, coverage, fuzzing, stateful links) is answered
    within the schema and never with a 5xx; ``positive_data_acceptance`` is left out: a
    body's being an image is not something JSON Schema can say. Nothing is left running."""
    args = ["--engine", "fake", "--workers", "2", "--spares", "0", "--timeout", "10"]
    with ServiceProcess(args, tmp_path / "server.log", env={"OCRPOOL_TOKEN": TOKEN}) as served:
        served.start()
        command = [sys.executable, "-m", "schemathesis.cli", "run"]
        command += [f"http://127.0.0.1:{served.port}/openapi.json", "--checks", "all"]
        command += ["--exclude-checks", "positive_data_acceptance", "-n", "25", "-w", "1"]
        command += ["--generation-deterministic", "-H", f"Authorization: Bearer {TOKEN}"]
        run = subprocess.run(  # in tmp_path: it keeps a cache folder where it runs
            command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
        )
        assert run.returncode == 0, run.stdout[-5000:]
        assert "No issues found" in run.stdout
        tree = psutil.Process(served.pid).children(recursive=True)
        assert served.stop() == 0
    _, alive = psutil.wait_procs(tree, timeout=30)  # the fork server follows its parent
    assert not alive


# ---- outputs --------------------------------------------------------------------------


def test_a_searchable_pdf_and_hocr_of_a_multi_page_tiff(
    server: ServiceProcess, tmp_path: Path
) -> None:
    document = Path(make_document(tmp_path / "doc.tif", 3)).read_bytes()
    pdf = server.request("POST", "/v1/ocr?name=doc.tif&exports=pdf", document)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(pdf.body)).pages) == 3
    hocr = server.request("POST", "/v1/ocr?name=doc.tif", document, {"Accept": "text/html"})
    assert hocr.status == 200 and hocr.headers["content-type"].startswith("text/html")
    pages = re.findall(r"<div class='ocr_page'[^>]*>(.*?)</div>", hocr.body.decode(), re.S)
    assert len(pages) == 3 and all(f" p{n}</span>" in page for n, page in enumerate(pages, 1))
    both = server.request("POST", "/v1/ocr?name=doc.tif&exports=pdf&exports=txt", document)
    record = both.json()
    assert record["ok"] and set(record["exports"]) == {"pdf", "txt"}
    assert len(PdfReader(io.BytesIO(base64.b64decode(record["exports"]["pdf"]))).pages) == 3
    assert base64.b64decode(record["exports"]["txt"]).decode().count("txt export of") == 3


def test_a_job_s_own_settings_reach_the_engine(server: ServiceProcess) -> None:
    record = server.request(
        "POST", "/v1/ocr?rotate_pages=true&spellcheck=eng&language=eng", png_header(8, 8)
    ).json()
    assert record["pages"][0]["rotation"] == 0.0
    assert record["pages"][0]["corrected_text"] == record["pages"][0]["text"]
    plain = server.request("POST", "/v1/ocr", png_header(8, 8)).json()
    assert "rotation" not in plain["pages"][0] and plain["exports"] == {}


# ---- inputs ---------------------------------------------------------------------------


def test_a_base64_json_body_and_a_list_of_them(server: ServiceProcess) -> None:
    image = png_header(8, 8)
    one = {"name": "scan.png", "content_base64": base64.b64encode(image).decode()}
    headers = {"Content-Type": "application/json"}
    record = server.request("POST", "/v1/ocr", json.dumps(one).encode(), headers).json()
    assert (record["ok"], record["path"], record["size"]) == (True, "scan.png", len(image))
    listed = server.request("POST", "/v1/ocr", json.dumps([one, one]).encode(), headers).json()
    assert [r["path"] for r in listed] == ["scan.png", "scan.png"]
    broken = server.request("POST", "/v1/ocr", b'{"content_base64": "***"}', headers)
    assert broken.status == 400 and broken.json()["type"] == "BadRequest"
    bomb = {"content_base64": base64.b64encode(png_header(100_000, 100_000)).decode()}
    refused = server.request("POST", "/v1/ocr", json.dumps(bomb).encode(), headers)
    assert refused.status == 422 and refused.json()["type"] == "ImageTooLarge"


def test_a_multipart_batch_is_answered_in_input_order(
    server: ServiceProcess, tmp_path: Path
) -> None:
    document = Path(make_document(tmp_path / "doc.tif", 2)).read_bytes()
    files = [("a.png", png_header(8, 8)), ("b.tif", document), ("c.png", png_header(9, 9))]
    body, headers = _multipart(files)
    records = server.request("POST", "/v1/ocr?exports=pdf", body, headers).json()
    assert [r["path"] for r in records] == ["a.png", "b.tif", "c.png"]
    assert all(r["ok"] for r in records) and len(records[1]["pages"]) == 2
    assert all("pdf" in r["exports"] for r in records)
    body, headers = _multipart([("a.png", png_header(8, 8)), ("notes.txt", b"plain text")])
    refused = server.request("POST", "/v1/ocr", body, headers)
    assert refused.status == 422 and refused.json()["input"] == "notes.txt"


def test_inputs_over_max_pages_in_all_are_refused_before_any_job_is_queued(
    server: ServiceProcess, tmp_path: Path
) -> None:
    """Each page is a job while the queue counts inputs: a long document (or a batch of
    them) is refused whole with 413, nothing queued; one at the limit is served."""
    over = Path(make_document(tmp_path / "over.tif", MAX_PAGES + 1)).read_bytes()
    three = Path(make_document(tmp_path / "three.tif", 3)).read_bytes()
    batch, headers = _multipart([("a.tif", three), ("b.tif", three)])
    refused = server.metric("ocrpool_requests_refused_total", reason="TooManyPages")
    for path, body, form, pages in (
        ("/v1/ocr", over, {}, MAX_PAGES + 1),
        ("/v1/jobs", over, {}, MAX_PAGES + 1),
        ("/v1/jobs", batch, headers, 6),
    ):
        reply = server.request("POST", path, body, form)
        assert reply.status == 413, reply.body
        assert reply.json() == {
            "type": "TooManyPages",
            "message": f"the request's inputs hold {pages} pages, over the limit of "
            f"{MAX_PAGES} pages a request (--max-pages)",
            "pages": pages,
            "limit": MAX_PAGES,
        }
        assert server.metric("ocrpool_queue_depth") == 0
        assert server.metric("ocrpool_queue_slots_used") == 0
    assert server.metric("ocrpool_requests_refused_total", reason="TooManyPages") == refused + 3
    at_limit = Path(make_document(tmp_path / "at.tif", MAX_PAGES)).read_bytes()
    record = server.request("POST", "/v1/ocr", at_limit).json()
    assert record["ok"] and len(record["pages"]) == MAX_PAGES


# ---- HTTP details ---------------------------------------------------------------------


def test_405_says_which_methods_the_path_takes(server: ServiceProcess) -> None:
    reply = server.request("PUT", "/v1/jobs/anything")
    assert reply.status == 405 and reply.json()["type"] == "MethodNotAllowed"
    assert reply.headers["allow"] == "DELETE, GET"
    probe = server.request("HEAD", "/healthz")
    assert probe.status == 200 and probe.body == b""


def test_cors_preflight_for_the_allowed_origin_only(server: ServiceProcess) -> None:
    asking = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    allowed = server.request("OPTIONS", "/v1/ocr", headers=asking)
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = server.request("OPTIONS", "/v1/ocr", headers={**asking, "Origin": "https://x.test"})
    assert other.status == 400 and "access-control-allow-origin" not in other.headers


def test_the_access_log_with_access_log_alone(server: ServiceProcess) -> None:
    assert server.request("GET", "/healthz?from=access-log-test").status == 200
    line = '"GET /healthz?from=access-log-test HTTP/1.1" 200'
    wait_until(lambda: line in server.log.read_text(), 10, "the access log line")


def test_process_metrics_and_the_dashboard_s_queries(server: ServiceProcess) -> None:
    text = server.request("GET", "/metrics").body.decode()
    exported = set(re.findall(r"^# TYPE (\w+) (\w+)", text, flags=re.M))
    names = set()
    for name, kind in exported:
        names.add(name)
        if kind == "counter":
            names.add(f"{name}_total")
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    for process_metric in ("resident_memory_bytes", "cpu_seconds_total", "open_fds"):
        assert f"process_{process_metric}" in names
    assert "process_start_time_seconds" in names
    queries = [
        target["expr"]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel["targets"]
    ]
    assert len(queries) > 10
    for query in queries:
        used = set(re.findall(r"\b((?:ocrpool|process)_\w+)", query))
        assert used and used <= names, query


@pytest.mark.slow
def test_delete_with_kill_stops_a_running_job(tmp_path: Path) -> None:
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--timeout", "300"]
    args += ["--engine-option", "delay=300"]
    with ServiceProcess(args, tmp_path / "server.log") as served:
        served.start()
        job_id = served.request("POST", "/v1/jobs", png_header(8, 8)).json()["id"]
        [worker] = served.workers()
        wait_until(lambda: _running(served), 30, "the job runs")
        refused = served.request("DELETE", f"/v1/jobs/{job_id}")
        assert refused.status == 409 and refused.json()["type"] == "NotCancellable"
        killed = served.request("DELETE", f"/v1/jobs/{job_id}?kill=true")
        assert killed.json() == {"id": job_id, "state": "cancelled"}
        wait_until(lambda: worker not in served.workers(), 30, "its worker stopped")
        fetched = served.request("GET", f"/v1/jobs/{job_id}")
        assert fetched.status == 410 and fetched.json()["type"] == "JobCancelled"
        assert served.metric("ocrpool_jobs_total", outcome="cancelled") == 1


def _running(served: ServiceProcess) -> bool:
    return served.metric("ocrpool_queue_depth") == 0 and served.metric("ocrpool_workers_ready") == 1


# ---- the drain rate -------------------------------------------------------------------


def test_retry_after_follows_the_queue_s_drain_rate() -> None:
    now = [0.0]
    slots = Slots(2, clock=lambda: now[0])
    held = [slots.take(), slots.take()]
    with pytest.raises(QueueFull) as nothing_measured:
        slots.take()
    assert nothing_measured.value.retry_after_s == MAX_RETRY_AFTER_S
    for second in range(1, 11):  # one slot freed every 2 s: 0.5 jobs/s
        now[0] = 2.0 * second
        held.pop().release()
        held.append(slots.take())
    with pytest.raises(QueueFull) as measured:
        slots.take()
    assert measured.value.retry_after_s == 2
    now[0] += 1000  # nothing finished for long: the measure is gone
    assert slots.retry_after_s() == MAX_RETRY_AFTER_S
    fast = Slots(1, clock=lambda: now[0])
    for _ in range(50):
        fast.take().release()
    now[0] += 1
    assert fast.retry_after_s() == MIN_RETRY_AFTER_S


@pytest.mark.aspose
def test_a_searchable_pdf_and_hocr_from_the_real_engine(tmp_path: Path) -> None:
    """The shipped 3-page TIFF over HTTP with Aspose: the PDF (merged from page jobs) has
    every page and its text; hOCR (one job) names the words of the first page."""
    document = Path(__file__).parent.parent / "examples" / "images" / "multipage-3.tif"
    data = document.read_bytes()
    args = ["--engine", "aspose", "--workers", "2", "--spares", "0", "--split-min-pages", "2"]
    with ServiceProcess(args, tmp_path / "server.log") as served:
        served.start()
        pdf = served.request("POST", "/v1/ocr?name=multipage-3.tif&exports=pdf", data)
        hocr = served.request("POST", "/v1/ocr?name=multipage-3.tif&exports=hocr", data)
        record = served.request("POST", "/v1/ocr?name=multipage-3.tif", data).json()
        assert served.stop() == 0
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    pages = PdfReader(io.BytesIO(pdf.body)).pages
    assert len(pages) == len(record["pages"]) == 3
    first_word = record["pages"][0]["text"].split()[0]
    assert first_word in pages[0].extract_text()
    assert hocr.status == 200 and hocr.headers["content-type"].startswith("text/html")
    assert "ocr_page" in hocr.body.decode() and first_word in hocr.body.decode()


def test_a_batch_takes_a_slot_per_input_or_none() -> None:
    slots = Slots(3)
    slot = slots.take()
    with pytest.raises(QueueFull, match="this request's 3 inputs need 3"):
        slot.grow(3)
    assert slots.used == 1
    slot.grow(2)
    assert slots.used == 3
    slot.release()
    slot.release()  # a second release gives nothing back twice
    assert slots.used == 0
