"""Decide, before any engine sees a file, whether it is an input worth sending.

Content decides, not the name: a PNG called ``scan.dat`` is OCRed, a ``README.md`` is
skipped. A name that claims an image whose content is not one (or is empty, or whose header
is broken) is a failure, because the user meant it as an input. Images whose header declares
more pixels than the limit are refused here, so a decompression bomb never reaches a decoder.
"""

from __future__ import annotations

import errno
import io
import os
import stat

from ocrpool.batch.scan import Skipped, SkipReason
from ocrpool.errors import InvalidInput, OutOfResources
from ocrpool.formats import (
    HEADER_BYTES,
    Format,
    check_pixels,
    image_size,
    read_image_size,
    sniff,
    sniff_file,
)

CLAIMED_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".bmp", ".dib", ".gif", ".pdf"}
)
_SHORT_OF = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})
"""What reading a file fails with when this process, not the file, is short."""
NOT_AN_IMAGE = "not an image: the content is not PNG, JPEG, TIFF, BMP, GIF or PDF"


def stat_input(path: str) -> os.stat_result:
    """``os.stat`` (following symlinks), with failures turned into a clear ``InvalidInput``."""
    try:
        return os.stat(path)
    except OSError as exc:
        raise InvalidInput(_stat_message(path, exc), input=path) from None


def admit(path: str, info: os.stat_result, *, max_pixels: int | None) -> Format | Skipped:
    """The format to OCR ``path`` as, or why it is skipped; ``InvalidInput`` if it is broken."""
    if not stat.S_ISREG(info.st_mode):
        return Skipped(path, SkipReason.NOT_A_FILE)
    claimed = os.path.splitext(path)[1].lower() in CLAIMED_SUFFIXES
    if info.st_size == 0:
        if claimed:
            raise InvalidInput("empty file (0 bytes)", input=path)
        return Skipped(path, SkipReason.NOT_AN_IMAGE, "empty file")
    try:
        fmt = sniff_file(path)
        size = image_size(path) if fmt not in (None, Format.PDF) else None
    except OSError as exc:
        if exc.errno in _SHORT_OF:
            reason = exc.strerror or str(exc)
            raise OutOfResources(
                f"cannot read {path}: {reason} (this process's limit on open files, "
                "ulimit -n, or on memory)",
                path=path,
                reason=reason,
            ) from None
        raise InvalidInput(f"cannot read: {exc.strerror or exc}", input=path) from None
    if fmt is None:
        if claimed:
            raise InvalidInput(NOT_AN_IMAGE, input=path)
        return Skipped(path, SkipReason.NOT_AN_IMAGE)
    _check_size(fmt, size, max_pixels, path)
    return fmt


def admit_bytes(data: bytes, *, max_pixels: int | None) -> Format:
    """``admit`` for an input given as bytes (``ocrpool serve``): there is no name to claim
    a format, so anything that is not an image or PDF is ``InvalidInput``."""
    if not data:
        raise InvalidInput("empty input (0 bytes)")
    fmt = sniff(data[:HEADER_BYTES])
    if fmt is None:
        raise InvalidInput(NOT_AN_IMAGE)
    size = read_image_size(io.BytesIO(data)) if fmt is not Format.PDF else None
    _check_size(fmt, size, max_pixels, None)
    return fmt


def _check_size(
    fmt: Format, size: tuple[int, int] | None, max_pixels: int | None, path: str | None
) -> None:
    """Refuse a header too broken to give a size, or one past ``max_pixels``."""
    if fmt is Format.PDF:
        return
    if size is None:
        raise InvalidInput(f"corrupt {fmt.value.upper()}: cannot read the image size", input=path)
    check_pixels(size, max_pixels, input=path, setting="--max-pixels")


def _stat_message(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop: the link resolves to itself"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f"broken symlink: its target {os.readlink(path)} does not exist"
    if exc.errno == errno.ENOENT:
        return "no such file"
    return f"cannot read: {exc.strerror or exc}"
