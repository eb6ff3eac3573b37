"""What a request gets back: the JSON record, or one export as the body, by its media type.

One export asked for (``?exports=pdf``, or an ``Accept`` naming an export's media type
such as ``application/pdf``) comes back as the body itself; several, a batch, or JSON
asked for come back as records whose ``exports`` hold each document base64-encoded. The
engine's own JSON export always travels in the record: the body ``application/json`` is
the record's.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from ocrpool.batch.records import Record
from ocrpool.exports import ExportFormat
from ocrpool.results import OcrResult
from ocrpool.service.replies import Reply, json_reply, public

MEDIA_TYPES: dict[ExportFormat, str] = {
    ExportFormat.PDF: "application/pdf",
    ExportFormat.HOCR: "text/html",
    ExportFormat.TXT: "text/plain",
    ExportFormat.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ExportFormat.MD: "text/markdown",
    ExportFormat.XML: "application/xml",
}
"""The export a media type in ``Accept`` asks for (``text/html`` is hOCR, the OCR one)."""

BODY_TYPES: dict[ExportFormat, str] = {
    **MEDIA_TYPES,
    ExportFormat.PDF_NO_IMG: "application/pdf",
    ExportFormat.HTML: "text/html",
}
"""Each format's media type as a body of its own; JSON is missing: it goes in the record."""

_BY_MEDIA_TYPE = {media_type: fmt for fmt, media_type in MEDIA_TYPES.items()}


@dataclass(frozen=True)
class Output:
    """What one request's answer holds."""

    exports: tuple[ExportFormat, ...] = ()
    body: ExportFormat | None = None
    """The one export that is the whole body, else the answer is the JSON record(s)."""
    detail: bool = False


def choose(exports: Sequence[ExportFormat], accept: str | None, detail: bool) -> Output:
    """The answer for ``?exports=`` (in order) and the ``Accept`` header: with no export
    named, the first acceptable media type that is an export's asks for it alone."""
    wanted = tuple(dict.fromkeys(exports))
    if not wanted:
        named = _accepted_export(accept or "")
        return Output((named,), named, detail) if named else Output(detail=detail)
    if len(wanted) == 1 and wanted[0] in BODY_TYPES and not _wants_json(accept or ""):
        return Output(wanted, wanted[0], detail)
    return Output(wanted, None, detail)


def record_reply(records: Sequence[tuple[Record, OcrResult]], output: Output, batch: bool) -> Reply:
    """200: the one export's bytes, the record, or (a batch) the list of records (the
    record too when the engine made no such export)."""
    if output.body is not None and not batch:
        _, result = records[0]
        for export in result.exports:
            if export.format is output.body:
                return Reply(200, export.data, media_type=BODY_TYPES[output.body])
    data = [_record_dict(record, result, output) for record, result in records]
    return json_reply(200, data if batch else data[0])


def _record_dict(record: Record, result: OcrResult, output: Output) -> dict[str, object]:
    """``ocrpool run``'s record, its errors and its pages' as a client may see them."""
    data = record.to_dict(detail=output.detail)
    for holder in (data, *data["pages"]):
        if holder.get("error") is not None:
            holder["error"] = public(holder["error"])
    data["exports"] = {
        export.format.value: base64.b64encode(export.data).decode()
        for export in result.exports
        if export.format in output.exports
    }
    return data


def _accepted_export(accept: str) -> ExportFormat | None:
    """The export named by the most preferred media type in ``accept`` that names one."""
    ranked = []
    for position, item in enumerate(accept.split(",")):
        media_type, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, media_type.lower()))
    for negative_quality, _, media_type in sorted(ranked):
        if negative_quality >= 0:
            break
        if media_type in ("application/json", "*/*", "application/*"):
            return None
        if media_type in _BY_MEDIA_TYPE:
            return _BY_MEDIA_TYPE[media_type]
    return None


def _wants_json(accept: str) -> bool:
    """``Accept`` asks for JSON first (the record, with the export inside)."""
    return accept.split(",")[0].split(";")[0].strip().lower() == "application/json"
