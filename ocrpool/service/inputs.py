"""From a request to an input the pool may see: bounded body, multipart or raw, or a path.

Every input passes the same admission as ``ocrpool run`` (content sniffing and the
``--max-pixels`` decompression-bomb rule) before it takes a worker's time.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ocrpool.batch.admission import admit, admit_bytes, stat_input
from ocrpool.batch.records import InputFile
from ocrpool.batch.scan import Skipped
from ocrpool.engines.base import Source
from ocrpool.errors import InvalidInput
from ocrpool.formats import Format
from ocrpool.service.errors import BadRequest, BodyTooLarge
from ocrpool.service.security import PathPolicy


@dataclass(frozen=True)
class Upload:
    """An admitted input: what the pool gets, and what its record says about it."""

    source: Source
    label: str
    input: InputFile
    format: Format


@dataclass(frozen=True)
class InputRules:
    max_body_bytes: int
    max_pixels: int | None
    paths: PathPolicy


async def read_upload(request: Request, rules: InputRules) -> Upload:
    """The request's input: ``?path=`` names a server-side file, else the body is the file
    (raw, or the first file part of a ``multipart/form-data`` body; ``?name=`` labels it)."""
    body = await _read_body(request, rules.max_body_bytes)
    path = request.query_params.get("path")
    if path is not None:
        if body:
            raise BadRequest("give either ?path= or a body, not both")
        return _admit_path(rules.paths.resolve(path), rules.max_pixels)
    name = request.query_params.get("name")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        body, filename = await _file_part(request.headers, body)
        name = name or filename
    fmt = admit_bytes(body, max_pixels=rules.max_pixels)
    label = name or f"<{len(body)} bytes>"
    return Upload(body, label, InputFile(label, len(body), None), fmt)


async def _read_body(request: Request, limit: int) -> bytes:
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


async def _file_part(headers: Headers, body: bytes) -> tuple[bytes, str | None]:
    """The bytes and file name of the first file part of a multipart body."""

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body
        yield b""

    try:
        form = await MultiPartParser(headers, replay(), max_files=1, max_fields=16).parse()
    except MultiPartException as error:
        raise BadRequest(f"unreadable multipart body: {error.message}") from None
    try:
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                return await value.read(), value.filename
    finally:
        await form.close()
    raise BadRequest("the multipart body has no file part")


def _admit_path(path: str, max_pixels: int | None) -> Upload:
    info = stat_input(path)
    fmt = admit(path, info, max_pixels=max_pixels)
    if isinstance(fmt, Skipped):
        raise InvalidInput(fmt.message, input=path)
    return Upload(path, path, InputFile(path, info.st_size, info.st_mtime), fmt)
