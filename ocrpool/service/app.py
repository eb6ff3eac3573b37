"""The HTTP routes of ``ocrpool serve``, and the ``Service`` that holds one process's state.

::

    POST   /v1/ocr[?wait=S]         inputs -> 200 record(s) or export | error | 202 {id} after S s
    POST   /v1/jobs                 inputs -> 202 {id, state: pending}
    GET    /v1/jobs/{id}[?wait=S]   the job's reply (as /v1/ocr's); 202 while pending
    DELETE /v1/jobs/{id}[?kill=true] cancel a queued job (200) or, with kill, a started one;
                                    delete a kept result (204), once settled
    GET    /healthz  /readyz  /metrics  /openapi.json  /docs

The routes are FastAPI's: it is Starlette (what the service ran on before) with the
OpenAPI 3.1 schema and the docs page generated from these routes' own signatures and
declared responses, so the schema cannot drift from the code (a Schemathesis test holds
the live service to it). The answers are bytes built here (``replies``), never validated
on the way out: the models in ``schema`` describe them.

An input is the body (raw bytes, a ``multipart/form-data`` form of one or more files, or
JSON ``{"name", "content_base64"}``) or, when the service allows it, ``?path=``. Per
request: ``language``, ``rotate_pages``, ``spellcheck`` and ``exports`` (the job's own
engine settings), ``detail``; one export comes back as the body (``outputs``). Every
error response is the error's ``to_dict()`` with its status from ``ocrpool.error_codes``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Annotated, Any, Union

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Receive

from ocrpool import __version__
from ocrpool.batch.records import Record
from ocrpool.engines.base import MAX_NAME, JobOptions
from ocrpool.errors import (
    EngineError,
    EngineStartError,
    InvalidInput,
    JobCancelled,
    JobTimeout,
    OcrPoolError,
    PagesFailed,
    PoolClosed,
    WorkerCrashed,
)
from ocrpool.exports import ExportFormat
from ocrpool.results import OcrResult
from ocrpool.service import schema
from ocrpool.service.backpressure import Slots
from ocrpool.service.errors import (
    BadRequest,
    BodyTooLarge,
    InternalError,
    JobNotFound,
    MethodNotAllowed,
    NotCancellable,
    NotFound,
    NotReady,
    PathRefused,
    QueueFull,
    RequestTimeout,
    TooManyPages,
    Unauthorized,
)
from ocrpool.service.inputs import InputRules, Inputs, Upload, read_inputs
from ocrpool.service.jobs import Job, JobState, JobTable, cancelled
from ocrpool.service.lifecycle import PoolLifecycle
from ocrpool.service.metrics import ServiceMetrics
from ocrpool.service.outputs import BODY_TYPES, Output, choose, record_reply
from ocrpool.service.replies import Reply, error_reply, json_reply, log_private
from ocrpool.service.security import BearerToken, PathPolicy
from ocrpool.service.settings import ServiceSettings

log = logging.getLogger("ocrpool")

MAX_WAIT_S = 300.0
"""The longest ``?wait=`` a request may hold its connection for."""

_CLIENT_GONE = Reply(499, b"{}")
"""What a request whose client hung up returns; it never reaches anyone (nginx's 499)."""

_INTERNAL = "internal error; see the service's log"
_INTERNAL_ERROR = error_reply(InternalError(_INTERNAL))
"""A bug's answer: its details go to the log, never to the client."""

_REFUSED = (BadRequest, InternalError, NotReady, EngineStartError, PoolClosed)
"""What any request may be refused with."""
_UPLOAD_REFUSED = (
    PathRefused,
    BodyTooLarge,
    TooManyPages,
    RequestTimeout,
    QueueFull,
    InvalidInput,
)
"""What a request that brings inputs may be refused with besides."""
_JOB_ERRORS = (InvalidInput, EngineError, JobTimeout, WorkerCrashed, JobCancelled)
"""What a job's own failure answers with (a broken or stopping pool is in ``_REFUSED``):
``POST /v1/ocr`` and ``GET /v1/jobs/{id}`` answer with a job's reply, so both list them."""

_TINY_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)
"""A 1x1 PNG: the schema's example input, so generated requests reach a worker too."""

_INPUT_BODY: dict[str, Any] = {
    "required": False,
    "description": "The input: a file's bytes, a form of one or more files (a batch, "
    "answered with a list in input order), or JSON with base64. Leave it empty with ?path=.",
    "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                },
            }
        },
        "application/json": {
            "schema": {
                "anyOf": [
                    schema.Base64Input.model_json_schema(),
                    {"type": "array", "items": schema.Base64Input.model_json_schema()},
                ]
            },
            "example": {"name": "page.png", "content_base64": _TINY_PNG},
        },
    },
}

_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Union[schema.Record, list[schema.Record]],  # noqa: UP007
        "description": "The record (a list of them for a batch), or the one export asked "
        "for as the body",
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in sorted(set(BODY_TYPES.values()))
        },
    },
}
_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "model": schema.JobAccepted,
        "description": "Accepted, not finished: poll Location (GET /v1/jobs/{id})",
        "headers": {"Location": {"schema": {"type": "string"}}},
    },
}


@dataclass(frozen=True)
class Asked:
    """What a request asked for besides its inputs."""

    name: str | None
    path: str | None
    options: JobOptions | None
    output: Output


async def _asked(
    name: Annotated[
        str | None, Query(description="A label for raw bytes (the record's path).")
    ] = None,
    path: Annotated[
        str | None, Query(description="A server-side file (with --allow-path-prefix).")
    ] = None,
    detail: Annotated[bool, Query(description="Add each page's lines and boxes.")] = False,
    language: Annotated[
        str | None, Query(description="The engine's language name.", max_length=MAX_NAME)
    ] = None,
    rotate_pages: Annotated[bool | None, Query(description="Recognise pages upright.")] = None,
    spellcheck: Annotated[
        str | None,
        Query(description="A spell-check language; empty turns it off.", max_length=MAX_NAME),
    ] = None,
    exports: Annotated[
        list[ExportFormat] | None,
        Query(description="Exports to render; one alone is the body, more are in the record."),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Asked:
    output = choose(exports or (), accept, detail)
    try:
        options = JobOptions(language, rotate_pages, spellcheck, output.exports or None)
    except ValueError as error:  # "", "%00": no language, refused before a worker sees it
        raise BadRequest(f"bad parameter: {error}") from None
    return Asked(name, path, None if options == JobOptions() else options, output)


_LISTS = frozenset({"exports"})
"""The query parameters a request may repeat (``?exports=pdf&exports=txt``)."""


async def _given_once(request: Request) -> None:
    """``BadRequest`` for any other parameter given twice: FastAPI would take the last
    value silently, where a proxy or a log in front may judge the request by the first
    (``?path=`` checked there, another one read here; ``?kill=true&kill=false``)."""
    counts = collections.Counter(key for key, _ in request.query_params.multi_items())
    twice = sorted(key for key, count in counts.items() if count > 1 and key not in _LISTS)
    if twice:
        raise BadRequest(f"bad parameter: {', '.join(twice)} given more than once")


_Wait = Annotated[
    float | None,
    Query(ge=0, le=MAX_WAIT_S, allow_inf_nan=False, description="Seconds to wait for the result."),
]


class Service:
    """One server process: its pool, its jobs, its queue slots and its metrics."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.lifecycle = PoolLifecycle(
            # the workers check both again as they read a file: one changed after its
            # admission cannot take a decompression bomb, or a long document, past them
            {**settings.pool, "max_pixels": settings.max_pixels, "max_pages": settings.max_pages},
            settings.drain_timeout_s,
            settings.unhealthy_after_s,
        )
        self.jobs = JobTable(
            ttl_s=settings.result_ttl_s,
            max_results=settings.max_results,
            max_bytes=settings.max_results_bytes,
        )
        self.slots = Slots(settings.max_queue)
        self.metrics = ServiceMetrics(self.lifecycle, self.jobs, self.slots)
        self._rules = InputRules(
            settings.max_body_bytes,
            settings.body_timeout_s,
            settings.max_pixels,
            PathPolicy(settings.allow_path_prefix),
            max_files=settings.max_queue,
            max_pages=settings.max_pages,
        )
        self._token = None if settings.token is None else BearerToken(settings.token)

    def asgi(self) -> FastAPI:
        """The ASGI application; its lifespan starts the pool and drains it at the end."""
        app = FastAPI(
            title="ocrpool",
            version=__version__,
            summary="OCR over HTTP from one pool of recycled worker processes",
            lifespan=self._lifespan,
            redoc_url=None,
            redirect_slashes=False,  # a 307 without a body; no route's answer is NotFound
        )
        app.state.service = self
        app.router.route_class = _ServiceRoute
        guarded: list[Any] = []
        refused: tuple[type[OcrPoolError], ...] = _REFUSED
        if self._token is not None:
            guarded, refused = [Depends(_authorize(self._token))], (*_REFUSED, Unauthorized)
        once = [*guarded, Depends(_given_once)]
        asking = (*refused, *_UPLOAD_REFUSED)
        add = app.add_api_route
        add(
            "/v1/ocr",
            self._ocr,
            methods=["POST"],
            dependencies=once,
            summary="OCR the inputs and answer with the result",
            responses={**_ANSWER, **_ACCEPTED, **schema.error_responses(*asking, *_JOB_ERRORS)},
            openapi_extra={"requestBody": _INPUT_BODY},
        )
        add(
            "/v1/jobs",
            self._create_job,
            methods=["POST"],
            status_code=202,
            dependencies=once,
            summary="Accept the inputs as a job; its result is fetched later",
            responses={**_ACCEPTED, **schema.error_responses(*asking)},
            openapi_extra={"requestBody": _INPUT_BODY},
        )
        add(
            "/v1/jobs/{id}",
            self._get_job,
            methods=["GET"],
            dependencies=once,
            summary="A job's result, as POST /v1/ocr answers it; 202 while pending",
            responses={
                **_ANSWER,
                **_ACCEPTED,
                **schema.error_responses(*refused, JobNotFound, *_JOB_ERRORS),
            },
        )
        add(
            "/v1/jobs/{id}",
            self._delete_job,
            methods=["DELETE"],
            dependencies=once,
            summary="Cancel a job (kill=true: a running one too), or delete its kept result",
            responses={
                200: {"model": schema.JobAccepted, "description": "Cancelled"},
                204: {
                    "description": "Its kept result is deleted: it had settled, or settles "
                    "first (a kill too late, another DELETE's cancel)"
                },
                **schema.error_responses(*refused, JobNotFound, NotCancellable),
            },
        )
        add(
            "/healthz",
            self._healthz,
            methods=["GET"],
            summary="Liveness: 503 once the pool has been broken past --unhealthy-after",
            responses={
                200: {"model": schema.Health},
                503: {"model": schema.Health},
                **schema.error_responses(InternalError),
            },
        )
        add(
            "/readyz",
            self._readyz,
            methods=["GET"],
            summary="Readiness: 200 once a worker is warm and the pool runs",
            responses={
                200: {"model": schema.Readiness},
                503: {"model": schema.Readiness},
                **schema.error_responses(InternalError),
            },
        )
        add(
            "/metrics",
            self._metrics,
            methods=["GET"],
            dependencies=guarded,
            summary="Prometheus metrics",
            responses={
                200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
                **schema.error_responses(*refused),
            },
        )
        for probe, answer in (("/healthz", self._healthz), ("/readyz", self._readyz)):
            add(probe, answer, methods=["HEAD"], include_in_schema=False)  # probes use HEAD too
        app.add_exception_handler(HTTPException, _http_exception)
        if self.settings.cors_origins:
            app.add_middleware(
                CORSMiddleware,
                allow_origins=list(self.settings.cors_origins),
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Accept"],
                expose_headers=["Location", "Retry-After"],
            )
        app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
        return app

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        self.lifecycle.start()
        try:
            yield
        finally:
            await self.lifecycle.stop()

    def refuse(self, error: OcrPoolError) -> Response:
        """The answer to a request refused before any job existed, counted."""
        self.metrics.refused.labels(type(error).__name__).inc()
        return error_reply(error, self.lifecycle.retry_after_s()).response()

    # ---- jobs -----------------------------------------------------------------------

    async def _ocr(
        self, request: Request, asked: Annotated[Asked, Depends(_asked)], wait: _Wait = None
    ) -> Response:
        job = await self._accept(request, asked)
        settled = await self._await(request, job, wait)
        if settled is None:
            self.jobs.remove(job)
            return _CLIENT_GONE.response()
        if not settled:
            return _pending(job)
        self.jobs.remove(job)
        assert job.reply is not None
        return job.reply.response()

    async def _create_job(
        self, request: Request, asked: Annotated[Asked, Depends(_asked)]
    ) -> Response:
        return _pending(await self._accept(request, asked))

    async def _get_job(self, request: Request, id: str, wait: _Wait = 0.0) -> Response:
        job = self.jobs.get(id)
        if not await self._await(request, job, wait) or job.reply is None:
            return _pending(job)
        return job.reply.response()

    async def _delete_job(
        self,
        id: str,
        kill: Annotated[bool, Query(description="Stop the job even if it runs.")] = False,
    ) -> Response:
        job = self.jobs.get(id)
        asked = job.state is JobState.PENDING and not job.cancelling
        if asked and not job.cancel(kill):
            raise NotCancellable(
                "the job (an input of it) already runs on a worker or has run; nothing was "
                "cancelled (DELETE ?kill=true stops it all)",
                id=job.id,
            )
        await job.settled.wait()
        if asked and job.state is JobState.CANCELLED:
            return json_reply(200, {"id": job.id, "state": job.state.value}).response()
        # settled, by this cancel (a kill that came too late) or another DELETE's
        self.jobs.remove(job)
        return Response(status_code=204)

    async def _accept(self, request: Request, asked: Asked) -> Job:
        """Take a queue slot, read and admit the inputs (a slot each), and hand them to the
        pool; the slots are held until the job settles."""
        slot = self.slots.take()
        futures: list[Future[OcrResult]] = []
        try:
            with self.lifecycle.admitting() as submit:
                reading = read_inputs(request, self._rules, asked.name, asked.path)
                inputs = await self.lifecycle.unless_closing(reading)
                if len(inputs.uploads) > 1:
                    slot.grow(len(inputs.uploads) - 1)
                for upload in inputs.uploads:
                    futures.append(await submit(upload.source, upload.label, asked.options))
        except BaseException:
            self.lifecycle.stop_job(futures, kill=True)
            slot.release()
            raise
        accepted = time.monotonic()

        def finish(done: Sequence[asyncio.Future[OcrResult]]) -> Reply:
            slot.release()
            self.metrics.job_seconds.observe(time.monotonic() - accepted)
            return self._reply(done, inputs, asked.output)

        return self.jobs.add(futures, finish, self.lifecycle.stop_job)

    def _reply(
        self, done: Sequence[asyncio.Future[OcrResult]], inputs: Inputs, output: Output
    ) -> Reply:
        """A settled job's reply: a lone input's error is the answer's status; a batch
        answers 200 with a record per input, failed ones too. What a worker wrote is
        logged, never answered (``PRIVATE_FIELDS``)."""
        records: list[tuple[Record, OcrResult]] = []
        for future, upload in zip(done, inputs.uploads, strict=True):
            result, error = self._outcome(future, upload)
            log_private(result)
            if error is not None and not inputs.batch:
                return error_reply(error, self.lifecycle.retry_after_s())
            records.append((Record(upload.input, upload.format.value, result), result))
        if all(map(cancelled, done)):  # a batch too: its job is CANCELLED, as a single one
            return error_reply(JobCancelled("the job was cancelled"))
        return record_reply(records, output, inputs.batch)

    def _outcome(
        self, done: asyncio.Future[OcrResult], upload: Upload
    ) -> tuple[OcrResult, OcrPoolError | None]:
        """One input's result (a failed one holds its error), its error if it has no
        pages to show, counted in the metrics."""
        error: BaseException | None
        if done.cancelled():
            error = JobCancelled("the job was cancelled before it ran")
        else:
            error = done.exception()
        if error is None:
            self.metrics.jobs.labels("ok").inc()
            return done.result(), None
        if isinstance(error, PagesFailed) and error.result is not None:  # a partial document
            self.metrics.jobs.labels("partial").inc()
            return error.result, None
        if not isinstance(error, OcrPoolError):
            log.error("job %s failed unexpectedly", upload.label, exc_info=error)
            error = InternalError(_INTERNAL)
        outcome = "cancelled" if isinstance(error, JobCancelled) else type(error).__name__
        self.metrics.jobs.labels(outcome).inc()
        return OcrResult(upload.label, error=error), error

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

    async def _healthz(self) -> Response:
        if self.lifecycle.healthy():
            return json_reply(200, {"status": "ok"}).response()
        return json_reply(
            503,
            {"status": "broken", "message": "the pool has been broken past --unhealthy-after"},
        ).response()

    async def _readyz(self) -> Response:
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
        ).response()

    async def _metrics(self) -> Response:
        body, content_type = self.metrics.exposition()
        return Response(body, 200, media_type=content_type)


class _ServiceRoute(APIRoute):
    """A route whose every refusal is the service's own error answer: a typed error,
    a parameter FastAPI could not read (``BadRequest``), a client gone, or a bug."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            service: Service = request.app.state.service
            try:
                return await handler(request)
            except RequestValidationError as error:
                return service.refuse(BadRequest(_unreadable(error)))
            except OcrPoolError as error:
                return service.refuse(error)
            except ClientDisconnect:
                return _CLIENT_GONE.response()
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                return _INTERNAL_ERROR.response()

        return answer


_BEARER = HTTPBearer(auto_error=False, description="The service's --token")
"""Declares the token in the schema; ``BearerToken`` checks it."""


def _authorize(token: BearerToken) -> Callable[..., Coroutine[Any, Any, None]]:
    """The dependency that checks the bearer token."""

    async def authorize(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        token.check(request.headers.get("authorization"))

    return authorize


def _unreadable(error: RequestValidationError) -> str:
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "query")
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "bad parameter: " + "; ".join(problems)


async def _http_exception(request: Request, error: Exception) -> Response:
    """The router's own refusals (no such route, wrong method) as typed errors; a 405
    says which methods the path takes (``Allow``), over every route of that path."""
    assert isinstance(error, HTTPException)
    if error.status_code != 405:
        return error_reply(NotFound(f"no route {request.url.path}")).response()
    allowed: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is Match.PARTIAL:
            allowed |= getattr(route, "methods", set())
    return error_reply(
        MethodNotAllowed(f"{request.method} is not allowed here", allow=sorted(allowed))
    ).response()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, less its 422 for unreadable parameters: those are 400 here."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for operations in document["paths"].values():
            for operation in operations.values():
                responses = operation["responses"]
                if responses.get("422", {}).get("description") == "Validation Error":
                    del responses["422"]
        for name in ("HTTPValidationError", "ValidationError"):
            document.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = document
    return app.openapi_schema


def _pending(job: Job) -> Response:
    return json_reply(
        202, {"id": job.id, "state": job.state.value}, {"Location": f"/v1/jobs/{job.id}"}
    ).response()


async def _disconnected(receive: Receive) -> None:
    """Returns when the client hangs up (its body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass
