"""From a request to the inputs the pool may see: a bounded body (raw bytes, a multipart
form of one or more files, or JSON with base64), or a server-side path.

Every input passes the same admission as ``ocrpool run`` (content sniffing and the
``--max-pixels`` decompression-bomb rule) before it takes a worker's time, whichever
form it came in: the body is bounded before it is parsed, a form's or a JSON list's
inputs are bounded by the queue slots they take, and their pages (each a job of the pool)
by ``--max-pages``. Admission and page counting read the whole input (a TIFF's directory
chain, a PDF's page tree), so they run in a thread, not on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ocrpool.batch.admission import admit, admit_bytes, stat_input
from ocrpool.batch.records import InputFile
from ocrpool.batch.scan import Skipped
from ocrpool.engines.base import Source
from ocrpool.errors import InvalidInput
from ocrpool.formats import Format
from ocrpool.pool.documents import source_page_count
from ocrpool.service.errors import BadRequest, BodyTooLarge, RequestTimeout, TooManyPages
from ocrpool.service.schema import Base64Input
from ocrpool.service.security import PathPolicy

_JSON_INPUTS: TypeAdapter[Base64Input | list[Base64Input]] = TypeAdapter(
    Base64Input | list[Base64Input]
)


@dataclass(frozen=True)
class Upload:
    """An admitted input: what the pool gets, and what its record says about it."""

    source: Source
    label: str
    input: InputFile
    format: Format
    pages: int
    """As the pool counts them to split it into page jobs; 1 when it cannot say (it then
    runs as one job)."""


@dataclass(frozen=True)
class InputRules:
    max_body_bytes: int
    body_timeout_s: float
    max_pixels: int | None
    paths: PathPolicy
    max_files: int
    """The most inputs one request may carry (the queue's bound: each takes a slot)."""
    max_pages: int
    """The most pages one request's inputs may hold in all."""


@dataclass(frozen=True)
class Inputs:
    """What one request asked for: its inputs in order, and whether it is a batch (a form
    or a JSON list, answered with a list even when it holds one input)."""

    uploads: tuple[Upload, ...]
    batch: bool


async def read_inputs(
    request: Request, rules: InputRules, name: str | None, path: str | None
) -> Inputs:
    """The request's inputs: ``path`` names a server-side file, else the body holds them
    (raw bytes labelled ``name``, a ``multipart/form-data`` form's file parts, or JSON)."""
    body = await _read_body(request, rules.max_body_bytes, rules.body_timeout_s)
    if path is not None:
        if body:
            raise BadRequest("give either ?path= or a body, not both")
        resolved = rules.paths.resolve(path)
        upload = await asyncio.to_thread(_admit_path, resolved, rules.max_pixels)
        return _within_pages(Inputs((upload,), batch=False), rules.max_pages)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        files, batch = await _file_parts(request.headers, body, rules.max_files), True
    elif content_type == "application/json":
        files, batch = _json_inputs(body, rules.max_files)
    else:
        files, batch = [(name, body)], False
    uploads = await asyncio.to_thread(_admitted, files, rules.max_pixels)
    return _within_pages(Inputs(uploads, batch), rules.max_pages)


def _within_pages(inputs: Inputs, limit: int) -> Inputs:
    """``inputs``, or ``TooManyPages`` if they hold more than ``limit`` pages in all:
    refused before any is queued."""
    pages = sum(upload.pages for upload in inputs.uploads)
    if pages > limit:
        raise TooManyPages(
            f"the request's inputs hold {pages} pages, over the limit of {limit} pages a "
            "request (--max-pages)",
            pages=pages,
            limit=limit,
        )
    return inputs


def _admitted(files: list[tuple[str | None, bytes]], max_pixels: int | None) -> tuple[Upload, ...]:
    uploads = []
    for name, data in files:
        label = name or f"<{len(data)} bytes>"
        try:
            fmt = admit_bytes(data, max_pixels=max_pixels)
        except InvalidInput as error:
            if error.input is None:
                error.input = label
            raise
        pages = source_page_count(data) or 1
        uploads.append(Upload(data, label, InputFile(label, len(data), None), fmt, pages))
    return tuple(uploads)


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, refused if it has not all come within ``timeout_s``: a client that
    sends headers, then nothing, would hold its queue slot for ever."""
    try:
        return await asyncio.wait_for(_bounded_body(request, limit), timeout_s)
    except asyncio.TimeoutError:  # not TimeoutError itself before Python 3.11
        raise RequestTimeout(
            f"the request body did not all arrive within {timeout_s:g} s (--body-timeout)",
            timeout_s=timeout_s,
        ) from None


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it is known to pass ``limit``: from its declared
    Content-Length before any byte is read, else while it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"the request body is over the limit of {limit} bytes (--max-body-mb)", limit_bytes=limit
    )


async def _file_parts(
    headers: Headers, body: bytes, max_files: int
) -> list[tuple[str | None, bytes]]:
    """The file name and bytes of each file part of a multipart body, in order."""

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body
        yield b""

    try:
        form = await MultiPartParser(headers, replay(), max_files=max_files, max_fields=16).parse()
    except MultiPartException as error:
        raise BadRequest(f"unreadable multipart body: {error.message}") from None
    try:
        files = [
            (value.filename, await value.read())
            for _, value in form.multi_items()
            if isinstance(value, UploadFile)
        ]
    finally:
        await form.close()
    if not files:
        raise BadRequest("the multipart body has no file part")
    return files


def _json_inputs(body: bytes, max_files: int) -> tuple[list[tuple[str | None, bytes]], bool]:
    """The inputs of a JSON body, ``{"name": ..., "content_base64": ...}`` or a list of
    them, and whether it was a list."""
    try:
        given = _JSON_INPUTS.validate_json(body)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the body"
        raise BadRequest(f"unreadable JSON input: {where}: {problem['msg']}") from None
    items = given if isinstance(given, list) else [given]
    if not items:
        raise BadRequest("the JSON list holds no input")
    if len(items) > max_files:
        raise BadRequest(f"at most {max_files} inputs in one request (--max-queue)")
    files = []
    for item in items:
        try:
            data = base64.b64decode(item.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"content_base64 of {item.name or 'an input'}: not base64") from None
        files.append((item.name, data))
    return files, isinstance(given, list)


def _admit_path(path: str, max_pixels: int | None) -> Upload:
    info = stat_input(path)
    fmt = admit(path, info, max_pixels=max_pixels)
    if isinstance(fmt, Skipped):
        raise InvalidInput(fmt.message, input=path)
    pages = source_page_count(path) or 1
    return Upload(path, path, InputFile(path, info.st_size, info.st_mtime), fmt, pages)
