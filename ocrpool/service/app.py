"""The HTTP routes of ``ocrpool serve``, and the ``Service`` that holds one process's state.

::

    POST   /v1/ocr[?wait=S]         input -> 200 record | error status | 202 {id} after S s
    POST   /v1/jobs                 input -> 202 {id, state: pending}
    GET    /v1/jobs/{id}[?wait=S]   the job's reply (record or error); 202 while pending
    DELETE /v1/jobs/{id}            cancel a queued job (200), or delete a kept result (204)
    GET    /healthz  /readyz  /metrics
    (/healthz: 503 once the pool has been broken for longer than --unhealthy-after)

An input is the body (raw bytes, or a ``multipart/form-data`` file part) or, when the
service allows it, ``?path=``. ``?detail=true`` adds lines and boxes to the record;
``?name=`` labels bytes. Every error response is the error's ``to_dict()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive

from ocrpool.batch.records import Record
from ocrpool.errors import JobCancelled, OcrPoolError, PagesFailed
from ocrpool.results import OcrResult
from ocrpool.service.backpressure import Slots
from ocrpool.service.errors import BadRequest, InternalError, NotCancellable
from ocrpool.service.inputs import InputRules, Upload, read_upload
from ocrpool.service.jobs import Job, JobState, JobTable
from ocrpool.service.lifecycle import PoolLifecycle
from ocrpool.service.metrics import ServiceMetrics
from ocrpool.service.replies import Reply, error_reply, json_reply
from ocrpool.service.security import BearerToken, PathPolicy
from ocrpool.service.settings import ServiceSettings

log = logging.getLogger("ocrpool")

MAX_WAIT_S = 300.0
"""The longest ``?wait=`` a request may hold its connection for."""

_CLIENT_GONE = Reply(499, b"{}")
"""What a request whose client hung up returns; it never reaches anyone (nginx's 499)."""

_INTERNAL_ERROR = error_reply(InternalError("internal error; see the service's log"))
"""A bug's answer: its details go to the log, never to the client."""

Handler = Callable[[Request], Awaitable[Reply]]


class Service:
    """One server process: its pool, its jobs, its queue slots and its metrics."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.lifecycle = PoolLifecycle(
            settings.pool, settings.drain_timeout_s, settings.unhealthy_after_s
        )
        self.jobs = JobTable(
            ttl_s=settings.result_ttl_s,
            max_results=settings.max_results,
            max_bytes=settings.max_results_bytes,
        )
        self.slots = Slots(settings.max_queue)
        self.metrics = ServiceMetrics(self.lifecycle, self.jobs, self.slots)
        self._rules = InputRules(
            settings.max_body_bytes, settings.max_pixels, PathPolicy(settings.allow_path_prefix)
        )
        self._token = None if settings.token is None else BearerToken(settings.token)

    def asgi(self) -> Starlette:
        """The ASGI application; its lifespan starts the pool and drains it at the end."""
        routes = [
            Route("/v1/ocr", self._endpoint(self._ocr), methods=["POST"]),
            Route("/v1/jobs", self._endpoint(self._create_job), methods=["POST"]),
            Route("/v1/jobs/{id}", self._endpoint(self._get_job), methods=["GET"]),
            Route("/v1/jobs/{id}", self._endpoint(self._delete_job), methods=["DELETE"]),
            Route("/healthz", self._endpoint(self._healthz, public=True), methods=["GET"]),
            Route("/readyz", self._endpoint(self._readyz, public=True), methods=["GET"]),
            Route("/metrics", self._endpoint(self._metrics), methods=["GET"]),
        ]
        return Starlette(
            routes=routes,
            lifespan=self._lifespan,
            exception_handlers={HTTPException: _http_exception},
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        self.lifecycle.start()
        try:
            yield
        finally:
            await self.lifecycle.stop()

    def _endpoint(self, handler: Handler, *, public: bool = False) -> Callable[..., Any]:
        """``handler`` behind the token check, with every error turned into its reply."""

        async def endpoint(request: Request) -> Response:
            try:
                if self._token is not None and not public:
                    self._token.check(request.headers.get("authorization"))
                reply = await handler(request)
            except OcrPoolError as error:
                self.metrics.refused.labels(type(error).__name__).inc()
                reply = error_reply(error, self.lifecycle.retry_after_s())
            except ClientDisconnect:
                reply = _CLIENT_GONE
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                reply = _INTERNAL_ERROR
            return reply.response()

        return endpoint

    # ---- jobs -----------------------------------------------------------------------

    async def _ocr(self, request: Request) -> Reply:
        wait = _wait(request, default=None)
        job = await self._accept(request)
        settled = await self._await(request, job, wait)
        if settled is None:
            self.jobs.remove(job)
            return _CLIENT_GONE
        if not settled:
            return _pending(job)
        self.jobs.remove(job)
        assert job.reply is not None
        return job.reply

    async def _create_job(self, request: Request) -> Reply:
        return _pending(await self._accept(request))

    async def _get_job(self, request: Request) -> Reply:
        wait = _wait(request, default=0.0)
        job = self.jobs.get(request.path_params["id"])
        if not await self._await(request, job, wait) or job.reply is None:
            return _pending(job)
        return job.reply

    async def _delete_job(self, request: Request) -> Reply:
        job = self.jobs.get(request.path_params["id"])
        if job.state is not JobState.PENDING:
            self.jobs.remove(job)
            return Reply(204, b"")
        if not job.cancel():
            raise NotCancellable("the job is already running on a worker", id=job.id)
        await job.settled.wait()
        return json_reply(200, {"id": job.id, "state": job.state.value})

    async def _accept(self, request: Request) -> Job:
        """Take a queue slot, read and admit the input, and hand it to the pool; the slot
        is held until the job settles."""
        detail = _flag(request, "detail")
        slot = self.slots.take()
        try:
            upload = await read_upload(request, self._rules)
            future = self.lifecycle.submit(upload.source, upload.label)
        except BaseException:
            slot.release()
            raise
        accepted = time.monotonic()

        def finish(done: asyncio.Future[OcrResult]) -> Reply:
            slot.release()
            reply, outcome = self._reply(done, upload, detail)
            self.metrics.jobs.labels(outcome).inc()
            self.metrics.job_seconds.observe(time.monotonic() - accepted)
            return reply

        return self.jobs.add(future, finish)

    def _reply(
        self, done: asyncio.Future[OcrResult], upload: Upload, detail: bool
    ) -> tuple[Reply, str]:
        """A settled job's reply, and its outcome for the metrics."""
        if done.cancelled():
            return error_reply(JobCancelled("the job was cancelled before it ran")), "cancelled"
        error = done.exception()
        if error is None:
            record = Record(upload.input, upload.format.value, done.result())
            return json_reply(200, record.to_dict(detail=detail)), "ok"
        if isinstance(error, PagesFailed) and error.result is not None:  # a partial document
            record = Record(upload.input, upload.format.value, error.result)
            return json_reply(200, record.to_dict(detail=detail)), "partial"
        if isinstance(error, OcrPoolError):
            return error_reply(error, self.lifecycle.retry_after_s()), type(error).__name__
        log.error("job %s failed unexpectedly", upload.label, exc_info=error)
        return _INTERNAL_ERROR, "InternalError"

    async def _await(self, request: Request, job: Job, wait: float | None) -> bool | None:
        """Whether ``job`` settled within ``wait`` seconds; ``None`` if the client left."""
        gone: asyncio.Future[object] = asyncio.ensure_future(_disconnected(request.receive))
        try:
            settled = await job.wait(wait, gone)
        finally:
            left = gone.done()
            gone.cancel()
        return None if left and not settled else settled

    # ---- probes and metrics ---------------------------------------------------------

    async def _healthz(self, _: Request) -> Reply:
        if self.lifecycle.healthy():
            return json_reply(200, {"status": "ok"})
        return json_reply(
            503,
            {"status": "broken", "message": "the pool has been broken past --unhealthy-after"},
        )

    async def _readyz(self, _: Request) -> Reply:
        stats = self.lifecycle.stats()
        ready = self.lifecycle.ready()
        return json_reply(
            200 if ready else 503,
            {
                "ready": ready,
                "state": self.lifecycle.state.value,
                "pool": None if stats is None else stats.state.value,
                "workers_ready": 0 if stats is None else stats.ready,
            },
        )

    async def _metrics(self, _: Request) -> Reply:
        body, content_type = self.metrics.exposition()
        return Reply(200, body, media_type=content_type)


async def _http_exception(_: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method) in the service's error shape."""
    assert isinstance(error, HTTPException)
    kind = HTTPStatus(error.status_code).phrase.replace(" ", "")
    return json_reply(error.status_code, {"type": kind, "message": error.detail}).response()


def _pending(job: Job) -> Reply:
    return json_reply(
        202, {"id": job.id, "state": job.state.value}, {"Location": f"/v1/jobs/{job.id}"}
    )


async def _disconnected(receive: Receive) -> None:
    """Returns when the client hangs up (its body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _wait(request: Request, default: float | None) -> float | None:
    text = request.query_params.get("wait")
    if text is None:
        return default
    try:
        wait = float(text)
    except ValueError:
        wait = math.nan
    if not 0 <= wait <= MAX_WAIT_S:
        raise BadRequest(f"wait must be a number of seconds from 0 to {MAX_WAIT_S:g}, not {text!r}")
    return wait


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("", "1", "true", "yes")
