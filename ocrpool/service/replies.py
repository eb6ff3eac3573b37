"""A response as data: what a finished job keeps until it is fetched, and how errors look."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ocrpool.error_codes import RETRY_AFTER_S, http_status_of
from ocrpool.errors import OcrPoolError
from ocrpool.results import OcrResult
from ocrpool.service.errors import ServiceError

log = logging.getLogger("ocrpool")

PRIVATE_FIELDS = frozenset({"stderr_tail"})
"""What a worker wrote (stack dumps, engine output): in the log, never sent to a client."""


def public(error: dict[str, Any]) -> dict[str, Any]:
    """An error's ``to_dict()`` as a client gets it, wherever it appears (an error answer,
    a record's ``error``, a page's): less the private fields."""
    return {k: v for k, v in error.items() if k not in PRIVATE_FIELDS}


def log_private(result: OcrResult) -> None:
    """Log the private fields of a result's errors (its own and its pages'): the service's
    log is the only place they go, where ``ocrpool run`` writes them in the record."""
    for error in (result.error, *(page.error for page in result.pages)):
        for name in sorted(PRIVATE_FIELDS):
            value = getattr(error, name, "")
            if value:
                log.warning("%s; the worker's %s:\n%s", error, name, value)


@dataclass(frozen=True)
class Reply:
    """A JSON response, serialised once: a stored result costs ``len(body)`` bytes."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    media_type: str = "application/json"

    def response(self) -> Response:
        return Response(
            self.body, self.status, headers=dict(self.headers), media_type=self.media_type
        )


def json_reply(
    status: int, data: dict[str, Any] | list[Any], headers: dict[str, str] | None = None
) -> Reply:
    body = json.dumps(data, separators=(",", ":"), default=str).encode()
    return Reply(status, body, tuple((headers or {}).items()))


def error_reply(error: OcrPoolError, retry_after_s: int = RETRY_AFTER_S) -> Reply:
    """The error's status (``ocrpool.error_codes``), and its ``to_dict()`` less the private
    fields as the body; a 503 says when to try again (``Retry-After``)."""
    data = public(error.to_dict())
    status = http_status_of(error)
    headers = error.headers() if isinstance(error, ServiceError) else {}
    if status == 503:
        headers.setdefault("Retry-After", str(retry_after_s))
    return json_reply(status, data, headers)
