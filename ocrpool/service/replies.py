"""A response as data: what a finished job keeps until it is fetched, and how errors look."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ocrpool.error_codes import RETRY_AFTER_S, http_status_of
from ocrpool.errors import OcrPoolError
from ocrpool.service.errors import ServiceError

PRIVATE_FIELDS = frozenset({"stderr_tail"})
"""What a worker wrote (stack dumps, engine output): in the log, never sent to a client."""


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
    data = {k: v for k, v in error.to_dict().items() if k not in PRIVATE_FIELDS}
    status = http_status_of(error)
    headers = error.headers() if isinstance(error, ServiceError) else {}
    if status == 503:
        headers.setdefault("Retry-After", str(retry_after_s))
    return json_reply(status, data, headers)
