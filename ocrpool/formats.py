"""Recognise image and document formats by their first bytes, not their names."""

from __future__ import annotations

import enum


class Format(str, enum.Enum):
    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"
    BMP = "bmp"
    GIF = "gif"
    PDF = "pdf"


HEADER_BYTES = 16
"""How many leading bytes ``sniff`` needs."""

_MAGIC: tuple[tuple[bytes, Format], ...] = (
    (b"\x89PNG\r\n\x1a\n", Format.PNG),
    (b"\xff\xd8\xff", Format.JPEG),
    (b"II*\x00", Format.TIFF),
    (b"MM\x00*", Format.TIFF),
    (b"BM", Format.BMP),
    (b"GIF87a", Format.GIF),
    (b"GIF89a", Format.GIF),
    (b"%PDF-", Format.PDF),
)


def sniff(header: bytes) -> Format | None:
    """The format whose signature ``header`` starts with, or ``None``."""
    for magic, fmt in _MAGIC:
        if header.startswith(magic):
            return fmt
    return None


def sniff_file(path: str) -> Format | None:
    """``sniff`` the first bytes of the file at ``path`` (``OSError`` propagates)."""
    with open(path, "rb") as handle:
        return sniff(handle.read(HEADER_BYTES))
