"""DELETE /v1/jobs/{id} against a served pool: what is cancelled, what is refused, and
what a later GET answers (split documents, batches, a job waiting to be retried, two
kills at once)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fakes import make_document
from test_batch_admission import png_header
from test_service import error_of
from test_service_http import _multipart

from tests.support.served import ServiceProcess, wait_until

IMAGE = png_header(8, 8)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One worker whose every page takes 300 s: a job runs until it is killed."""
    log = tmp_path_factory.mktemp("cancel") / "server.log"
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--timeout", "600"]
    args += ["--split-min-pages", "2", "--engine-option", "delay=300"]
    with ServiceProcess(args, log) as served:
        yield served.start()


def _runs(served: ServiceProcess, queued: int) -> None:
    """Wait until the one worker runs a job and ``queued`` wait behind it."""
    wait_until(
        lambda: (
            served.metric("ocrpool_queue_depth") == queued
            and served.metric("ocrpool_workers_ready") == 1
        ),
        30,
        "the first job runs",
    )


def _kill(served: ServiceProcess, job_id: str) -> None:
    killed = served.request("DELETE", f"/v1/jobs/{job_id}?kill=true")
    assert killed.json() == {"id": job_id, "state": "cancelled"}


@pytest.mark.slow
def test_a_document_whose_first_page_runs_is_not_cancelled_without_kill(
    server: ServiceProcess, tmp_path: Path
) -> None:
    document = Path(make_document(tmp_path / "doc.tif", 3)).read_bytes()
    job_id = server.request("POST", "/v1/jobs?name=doc.tif", document).json()["id"]
    _runs(server, queued=2)
    error_of(server.request("DELETE", f"/v1/jobs/{job_id}"), 409, "NotCancellable")
    assert server.request("GET", f"/v1/jobs/{job_id}").status == 202
    assert server.metric("ocrpool_queue_depth") == 2  # its other pages still wait
    _kill(server, job_id)
    error_of(server.request("GET", f"/v1/jobs/{job_id}"), 410, "JobCancelled")


@pytest.mark.slow
def test_a_cancelled_batch_is_410_as_a_cancelled_job(server: ServiceProcess) -> None:
    occupant = server.request("POST", "/v1/jobs?name=occupant.png", IMAGE).json()["id"]
    body, headers = _multipart([("a.png", IMAGE), ("b.png", IMAGE)])
    batch = server.request("POST", "/v1/jobs", body, headers).json()["id"]
    _runs(server, queued=2)
    cancelled = server.request("DELETE", f"/v1/jobs/{batch}")
    assert cancelled.json() == {"id": batch, "state": "cancelled"}
    error_of(server.request("GET", f"/v1/jobs/{batch}"), 410, "JobCancelled")
    _kill(server, occupant)


@pytest.mark.slow
def test_two_kills_at_once_cancel_once_and_delete_once(server: ServiceProcess) -> None:
    """The second is answered as a DELETE of a cancelled job: 204, its result deleted."""
    job_id = server.request("POST", "/v1/jobs?name=hung.png", IMAGE).json()["id"]
    _runs(server, queued=0)
    with ThreadPoolExecutor(2) as threads:
        replies = list(
            threads.map(
                lambda _: server.request("DELETE", f"/v1/jobs/{job_id}?kill=true"), range(2)
            )
        )
    assert sorted(reply.status for reply in replies) == [200, 204]
    error_of(server.request("GET", f"/v1/jobs/{job_id}"), 404, "JobNotFound")


def test_an_empty_job_id_is_404_not_a_redirect(server: ServiceProcess) -> None:
    for method in ("GET", "DELETE"):
        error_of(server.request(method, "/v1/jobs/"), 404, "NotFound")


@pytest.mark.slow
def test_kill_cancels_a_job_waiting_to_be_retried(tmp_path: Path) -> None:
    """Its worker crashed; the replacement takes 5 s to warm, and the job waits for it
    in the queue, started but held by no worker."""
    (tmp_path / "in").mkdir()
    crash = tmp_path / "in" / "crash.png"
    crash.write_bytes(IMAGE)
    args = ["--engine", "fake", "--workers", "1", "--spares", "0", "--retries", "1"]
    args += ["--engine-option", "start_delay=5", "--allow-path-prefix", str(tmp_path / "in")]
    with ServiceProcess(args, tmp_path / "server.log") as served:
        served.start()
        job_id = served.request("POST", f"/v1/jobs?path={crash}").json()["id"]
        wait_until(lambda: served.metric("ocrpool_job_retries_total") == 1, 30, "queued again")
        _kill(served, job_id)
        error_of(served.request("GET", f"/v1/jobs/{job_id}"), 410, "JobCancelled")
