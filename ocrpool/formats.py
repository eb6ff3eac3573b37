"""Recognise image and document formats by their first bytes, not their names."""

from __future__ import annotations

import enum
import os
import stat
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO


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


def image_size(path: str) -> tuple[int, int] | None:
    """``(width, height)`` read from the header of the image at ``path``, without decoding it.

    Lets a caller refuse a decompression bomb before any decoder sees it. For a multi-page
    TIFF it is the largest page. ``None`` for a PDF (its pixel count depends on rendering),
    an unrecognised file, or a header too broken to say; ``OSError`` propagates.
    """
    with open(path, "rb") as handle:
        return read_image_size(handle)


def read_image_size(handle: BinaryIO) -> tuple[int, int] | None:
    """``image_size`` of a seekable binary stream (a file, or ``io.BytesIO`` for bytes)."""
    header = handle.read(_SIZE_HEADER_BYTES)
    fmt = sniff(header)
    if fmt is None or fmt is Format.PDF:
        return None
    if fmt is Format.PNG:
        return _png_size(header)
    if fmt is Format.GIF:
        return _gif_size(header)
    if fmt is Format.BMP:
        return _bmp_size(header)
    if fmt is Format.JPEG:
        return _jpeg_size(handle)
    return _tiff_size(_reader(handle), header)


_SIZE_HEADER_BYTES = 32
_MAX_TIFF_PAGES = 100_000
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


def _png_size(header: bytes) -> tuple[int, int] | None:
    if len(header) < 24 or header[12:16] != b"IHDR":
        return None
    return _positive(int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big"))


def _gif_size(header: bytes) -> tuple[int, int] | None:
    if len(header) < 10:
        return None
    return _positive(int.from_bytes(header[6:8], "little"), int.from_bytes(header[8:10], "little"))


def _bmp_size(header: bytes) -> tuple[int, int] | None:
    if len(header) < 26:
        return None
    if int.from_bytes(header[14:18], "little") == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return _positive(
            int.from_bytes(header[18:20], "little"), int.from_bytes(header[20:22], "little")
        )
    width = int.from_bytes(header[18:22], "little", signed=True)
    height = int.from_bytes(header[22:26], "little", signed=True)
    return _positive(width, abs(height))  # a negative height means rows run top-down


def _jpeg_size(handle: BinaryIO) -> tuple[int, int] | None:
    """Walk the marker segments to the first start-of-frame, which holds the size."""
    handle.seek(2)
    while True:
        byte = handle.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            continue
        marker = handle.read(1)
        while marker == b"\xff":  # fill bytes
            marker = handle.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in _JPEG_STANDALONE:
            continue
        if code in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        length_bytes = handle.read(2)
        if len(length_bytes) < 2:
            return None
        length = int.from_bytes(length_bytes, "big")
        if code in _JPEG_SOF:
            frame = handle.read(5)
            if len(frame) < 5:
                return None
            return _positive(int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big"))
        if length < 2:
            return None
        handle.seek(length - 2, os.SEEK_CUR)


ReadAt = Callable[[int, int], bytes]
"""``read_at(offset, size)``: up to ``size`` bytes from ``offset`` (fewer at the end)."""


def _reader(handle: BinaryIO) -> ReadAt:
    def read_at(offset: int, size: int) -> bytes:
        handle.seek(offset)
        return handle.read(size)

    return read_at


def _tiff_size(read_at: ReadAt, header: bytes) -> tuple[int, int] | None:
    """The largest page of the chain of image file directories."""
    largest: tuple[int, int] | None = None
    for page in _tiff_pages(read_at, header):
        if page is None:
            return None
        if largest is None or page[0] * page[1] > largest[0] * largest[1]:
            largest = page
    return largest


_IFD_READ = 512
"""Bytes read at a directory's offset: its entry count, then (in one read for up to 42
entries, which covers ordinary scans) its entries and the next directory's offset."""


_TIFF_STRUCTS = {
    byte_order: tuple(struct.Struct(sign + code) for code in ("H", "I", "HH4x4s"))
    for byte_order, sign in ((b"II", "<"), (b"MM", ">"))
}
"""A TIFF's SHORT, LONG and directory entry (tag, type, value) in each byte order."""


def _tiff_pages(read_at: ReadAt, header: bytes) -> Iterator[tuple[int, int] | None]:
    """Each page's size, following the chain of image file directories (``None`` for a
    page whose directory is cut short or has no size; the walk stops there). A pool runs
    this for every TIFF submitted: precompiled structs, and a directory's entries read
    only until both sizes are found."""
    short, long, entry = _TIFF_STRUCTS[header[:2]]
    if len(header) < 8:  # the signature, but no first directory's offset: cut short
        yield None
        return
    offset = long.unpack_from(header, 4)[0]
    seen: set[int] = set()
    while offset and offset not in seen and len(seen) < _MAX_TIFF_PAGES:
        seen.add(offset)
        block = read_at(offset, _IFD_READ)
        if len(block) < 2:
            yield None
            return
        end = 2 + 12 * short.unpack_from(block)[0]
        if len(block) == _IFD_READ and len(block) < end + 4:
            block = read_at(offset, end + 4)
        size = {256: 0, 257: 0}  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
        for at in range(2, min(end, len(block) - 11), 12):
            tag, kind, value = entry.unpack_from(block, at)
            if tag in size:
                size[tag] = (short if kind == 3 else long).unpack_from(value)[0]
                if size[256] and size[257]:
                    break
        page = _positive(size[256], size[257])
        yield page
        if page is None or len(block) < end + 4:
            return
        offset = long.unpack_from(block, end)[0]


def _tiff_page_count(read_at: ReadAt, header: bytes) -> int | None:
    pages = list(_tiff_pages(read_at, header))
    return None if not pages or None in pages else len(pages)


def page_sizes(path: str) -> list[tuple[int, int]] | None:
    """Each page's ``(width, height)`` in pixels, read from a TIFF's image file
    directories without decoding; ``None`` for any other file (a PDF page has no pixel
    size until rendered), one too broken to say, or one that cannot be read."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(_SIZE_HEADER_BYTES)
            if sniff(header) is not Format.TIFF:
                return None
            pages = list(_tiff_pages(_reader(handle), header))
    except OSError:
        return None
    sizes = [page for page in pages if page is not None]
    return sizes if sizes and len(sizes) == len(pages) else None


def page_count(handle: BinaryIO) -> int | None:
    """How many pages a seekable stream holds, without decoding or rendering any: a TIFF's
    image file directories, a PDF's page tree (pypdf), 1 for any other image; ``None``
    when the file is not recognised or too broken to say (the engine then reads it whole
    and reports what is wrong)."""
    header = handle.read(_SIZE_HEADER_BYTES)
    fmt = sniff(header)
    if fmt is None:
        return None
    if fmt is Format.TIFF:
        return _tiff_page_count(_reader(handle), header)
    if fmt is Format.PDF:
        return _pdf_pages(handle)
    return 1


Stamp = tuple[int, int]
"""A file's size and modification time (``st_mtime_ns``): another file written in its
place, or this one rewritten, has another. Not its inode or device: a network or FUSE
file system may number those its own way on each node of a Ray cluster, or anew after
a cache eviction."""


def file_stamp(path: str) -> Stamp | None:
    """The ``Stamp`` of the file at ``path`` now; ``None`` if it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns)


def file_page_count(path: str) -> int | None:
    """``page_count`` of the regular file at ``path``; ``None`` for anything else, or when
    it cannot be read."""
    return file_pages(path)[0]


def file_pages(path: str) -> tuple[int | None, Stamp | None]:
    """``file_page_count``, and the ``Stamp`` of the very file counted (read from the
    descriptor counted through, so a file replaced meanwhile cannot pair its stamp with
    the old file's count). Opened without blocking and checked before any read: opening
    a FIFO would block, and reading it eat its data. A pool runs this for every job
    submitted, so it reads with ``pread`` and no file object: a single-image format is
    told from its first bytes, a one-page TIFF in one more read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None, None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            return None, None
        stamp = (info.st_size, info.st_mtime_ns)
        header = os.pread(descriptor, HEADER_BYTES, 0)
        fmt = sniff(header)
        if fmt is Format.TIFF:
            pages = _tiff_page_count(lambda at, size: os.pread(descriptor, size, at), header)
            return pages, stamp
        if fmt is not Format.PDF:
            return (None if fmt is None else 1), stamp
        with os.fdopen(os.dup(descriptor), "rb") as handle:
            return page_count(handle), stamp
    except OSError:
        return None, None
    finally:
        os.close(descriptor)


def _pdf_pages(handle: BinaryIO) -> int | None:
    from pypdf import PdfReader  # only for PDFs: a pure-Python import of ~50 ms
    from pypdf.errors import PyPdfError

    handle.seek(0)
    try:
        count = len(PdfReader(handle).pages)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError):
        return None
    return count or None
