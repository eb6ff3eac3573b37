"""The service's answers as pydantic models, for the OpenAPI schema FastAPI writes.

The routes answer with bytes they build themselves (a record serialised once, kept in the
job table by its size), so these models describe the answers, never build them: the
records' shape is ``Record.to_dict()``, each error's is its class's declared fields, and
the Schemathesis test holds the live service to them. Error models are made from the
error classes themselves and their statuses from the one table (``ocrpool.error_codes``),
so a field or a status added there is in the schema too.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ocrpool.error_codes import http_status_of
from ocrpool.errors import OcrPoolError
from ocrpool.service.replies import PRIVATE_FIELDS


class ErrorRecord(BaseModel):
    """An error inside a record: its type, its message, and its class's own fields."""

    model_config = ConfigDict(extra="allow")
    type: str
    message: str


class Line(BaseModel):
    text: str
    box: tuple[int, int, int, int] | None
    confidence: float | None


class Page(BaseModel):
    text: str
    empty: bool
    error: ErrorRecord | None = Field(None, description="Why this page failed, if it did.")
    rotation: float | None = Field(None, description="Degrees turned upright (rotate_pages).")
    corrected_text: str | None = Field(None, description="The text after spell-check.")
    lines: list[Line] | None = Field(None, description="With detail=true.")


class Attempt(BaseModel):
    worker_pid: int | None
    outcome: str
    elapsed_s: float
    message: str


class Record(BaseModel):
    """The same record ``ocrpool run`` writes for one input."""

    path: str
    size: int | None
    mtime: float | None
    format: str | None
    ok: bool
    partial: bool
    failed_pages: list[int]
    error: ErrorRecord | None
    pages: list[Page]
    attempts: list[Attempt]
    worker_pid: int | None
    elapsed_s: float
    rss_mb: float | None
    evaluation_mode: bool
    exports: dict[str, str] = Field(
        description="Each export asked for, by format, base64-encoded (empty without exports)."
    )


class BatchItem(BaseModel):
    """One input of a batch: its record, or the error that failed it."""

    status: int = Field(description="The HTTP status this input alone would have had.")
    record: Record | None
    error: ErrorRecord | None


class JobAccepted(BaseModel):
    id: str
    state: Literal["pending", "finished", "cancelled"]


class Health(BaseModel):
    status: Literal["ok", "broken"]
    message: str | None = None


class Readiness(BaseModel):
    ready: bool
    state: Literal["starting", "serving", "broken", "draining", "stopped"]
    pool: str | None
    workers_ready: int


class Base64Input(BaseModel):
    """An input as JSON, as API gateways and docling-serve clients send it."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="A label for the record's path.")
    content_base64: str = Field(description="The file's bytes, base64-encoded.")


def error_responses(*kinds: type[OcrPoolError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for the errors a route may answer: ``kinds`` and their subclasses,
    grouped by status, each body the error's own model."""
    by_status: dict[int, list[type[OcrPoolError]]] = {}
    for kind in _with_subclasses(kinds):
        by_status.setdefault(http_status_of(kind), []).append(kind)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, members in sorted(by_status.items()):
        models = tuple(error_model(kind) for kind in members)
        names = ", ".join(kind.__name__ for kind in members)
        responses[status] = {
            "model": models[0] if len(models) == 1 else typing.Union[models],  # noqa: UP007
            "description": names,
        }
        if status in _HEADERS:
            responses[status]["headers"] = {_HEADERS[status]: {"schema": {"type": "string"}}}
    return responses


_HEADERS = {401: "WWW-Authenticate", 429: "Retry-After", 503: "Retry-After"}
"""The header each status carries."""


def error_model(kind: type[OcrPoolError]) -> type[BaseModel]:
    """The body of ``kind``'s answer: ``type`` (its name), ``message``, and its fields
    (less the private ones a client never gets); one model per class, made once."""
    if kind not in _ERROR_MODELS:
        _ERROR_MODELS[kind] = _make_error_model(kind)
    return _ERROR_MODELS[kind]


_ERROR_MODELS: dict[type[OcrPoolError], type[BaseModel]] = {}


def _make_error_model(kind: type[OcrPoolError]) -> type[BaseModel]:
    hints = typing.get_type_hints(kind)
    fields: dict[str, Any] = {
        "type": (Literal[kind.__name__], ...),
        "message": (str, ...),
    }
    for name in kind._field_names:
        if name not in PRIVATE_FIELDS:
            fields[name] = (hints[name], ...)
    model: type[BaseModel] = create_model(kind.__name__, __doc__=kind.__doc__, **fields)
    return model


def _with_subclasses(kinds: Iterable[type[OcrPoolError]]) -> list[type[OcrPoolError]]:
    found: list[type[OcrPoolError]] = []
    todo = list(kinds)
    while todo:
        kind = todo.pop(0)
        if kind not in found:
            found.append(kind)
            todo.extend(kind.__subclasses__())
    return found
