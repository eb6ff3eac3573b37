"""Documents an engine renders from its own result: searchable PDF, hOCR, DOCX and more.

An engine makes them in the worker (they need its native result) and they travel back
as bytes in the ``Recognition``; ``Export.save`` writes one so that no reader ever sees
half of it under its final name.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Iterable
from dataclasses import dataclass


class ExportFormat(str, enum.Enum):
    """What an input can be exported as: one file per input, holding all its pages."""

    PDF = "pdf"
    """The scan with an invisible, searchable text layer on top."""
    PDF_NO_IMG = "pdf-no-img"
    """The recognised text alone, laid out as on the page."""
    HOCR = "hocr"
    DOCX = "docx"
    MD = "md"
    HTML = "html"
    JSON = "json"
    XML = "xml"
    TXT = "txt"

    @property
    def suffix(self) -> str:
        """Appended to the input's name: ``scan.tif`` -> ``scan.tif.pdf``."""
        return ".text.pdf" if self is ExportFormat.PDF_NO_IMG else f".{self.value}"


def parse_formats(names: str | Iterable[str]) -> tuple[ExportFormat, ...]:
    """The formats named, in a sequence or comma-separated (any case, in order, duplicates
    dropped); ``ValueError`` naming the choices for an unknown one, ``TypeError`` for what
    is no name (a number, ``None``), not an ``AttributeError`` from its use as one."""
    if not isinstance(names, (str, Iterable)):
        raise TypeError(f"export formats are names, not {type(names).__name__} {names!r}")
    formats: list[ExportFormat] = []
    for name in names.split(",") if isinstance(names, str) else names:
        if not isinstance(name, str):
            raise TypeError(f"an export format is a name, not {type(name).__name__} {name!r}")
        try:
            fmt = name if isinstance(name, ExportFormat) else ExportFormat(name.strip().lower())
        except ValueError:
            choices = ", ".join(f.value for f in ExportFormat)
            raise ValueError(f"unknown export format {name!r}; choose from: {choices}") from None
        if fmt not in formats:
            formats.append(fmt)
    return tuple(formats)


@dataclass(frozen=True)
class Export:
    """One exported document of one input."""

    format: ExportFormat
    data: bytes

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to ``path`` whole: to ``path.part`` first, then renamed over ``path``."""
        write_atomically(os.fspath(path), self.data)


def write_atomically(path: str, data: bytes) -> None:
    """``path`` holds ``data`` or what it held before, never a part: a process killed
    mid-write leaves ``path.part``, which the next write of ``path`` replaces; a write
    that fails (disk full) removes it and raises. A symlink under either name is never
    followed: the part is opened ``O_NOFOLLOW`` and the rename replaces a link itself."""
    partial = path + ".part"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
        with open(fd, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
