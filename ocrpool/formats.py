"""Recognise image and document formats by their first bytes, not their names."""

from __future__ import annotations

import enum
import os
import stat
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

from ocrpool.errors import ImageTooLarge


class Format(str, enum.Enum):
    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"
    BMP = "bmp"
    GIF = "gif"
    PDF = "pdf"


HEADER_BYTES = 16
"""How many leading bytes ``sniff`` needs."""

DEFAULT_MAX_PIXELS = 178_956_970
"""Pillow's ``DecompressionBombError`` threshold (twice ``Image.MAX_IMAGE_PIXELS``)."""

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
    if fmt is Format.TIFF:
        return _tiff_size(_reader(handle), header)
    if fmt is Format.JPEG:
        return _jpeg_size(handle)
    return _header_size(fmt, header)


def _header_size(fmt: Format | None, header: bytes) -> tuple[int, int] | None:
    """The size a PNG, GIF or BMP declares in its first ``_SIZE_HEADER_BYTES``; ``None``
    for any other format."""
    sizer = _HEADER_SIZES.get(fmt) if fmt is not None else None
    return None if sizer is None else sizer(header)


def too_many_pixels(size: tuple[int, int] | None, max_pixels: int | None) -> bool:
    """Whether ``size`` is known and past ``max_pixels`` (``None`` or 0: no limit)."""
    if not max_pixels or size is None:
        return False
    return size[0] * size[1] > max_pixels


def check_pixels(
    size: tuple[int, int], max_pixels: int | None, *, input: str | None, setting: str
) -> None:
    """``ImageTooLarge`` if ``size`` is past ``max_pixels`` (``None`` or 0: no limit);
    ``setting`` names the limit for the message."""
    if not max_pixels or not too_many_pixels(size, max_pixels):
        return
    pixels = size[0] * size[1]
    raise ImageTooLarge(
        f"image too large: {size[0]}x{size[1]} = {pixels} pixels is over the limit "
        f"of {max_pixels} ({setting}), a possible decompression bomb",
        input=input,
        width=size[0],
        height=size[1],
        max_pixels=max_pixels,
    )


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


_HEADER_SIZES: dict[Format, Callable[[bytes], tuple[int, int] | None]] = {
    Format.PNG: _png_size,
    Format.GIF: _gif_size,
    Format.BMP: _bmp_size,
}


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
    return _largest(list(_tiff_pages(read_at, header)))


def _largest(pages: list[tuple[int, int] | None]) -> tuple[int, int] | None:
    """The page of most pixels; ``None`` if there is none or any page has no size."""
    sizes = [page for page in pages if page is not None]
    if not sizes or len(sizes) < len(pages):
        return None
    return max(sizes, key=lambda size: size[0] * size[1])


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
    return file_layout(path).pages


class Layout(NamedTuple):
    """What ``file_layout`` read of a file, without decoding it."""

    pages: int | None
    """``page_count``: ``None`` when not a regular file, unreadable, or too broken to say."""
    stamp: Stamp | None
    largest: tuple[int, int] | None = None
    """The largest page's ``(width, height)``, when asked for and declared (not a PDF's)."""


_UNREAD = Layout(None, None)


def file_layout(path: str, *, sizes: bool = False, pdf_pages: bool = True) -> Layout:
    """The pages of the file at ``path``, the ``Stamp`` of the very file counted (read
    from the descriptor counted through, so a file replaced meanwhile cannot pair its
    stamp with the old file's count) and, with ``sizes``, its largest page. Opened
    without blocking and checked before any read: opening a FIFO would block, and reading
    it eat its data. A pool runs this for every path job, so it reads with ``pread`` and
    no file object: a PNG, GIF or BMP is told, size and all, from its first bytes, a
    TIFF from its directories; only a JPEG's size and a PDF's pages need more (with
    ``pdf_pages=False`` a PDF's are not counted: ``None``)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return _UNREAD
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            return _UNREAD
        stamp = (info.st_size, info.st_mtime_ns)
        header = os.pread(descriptor, _SIZE_HEADER_BYTES, 0)
        fmt = sniff(header)
        if fmt is None:
            return Layout(None, stamp)
        if fmt is Format.TIFF:
            pages = list(_tiff_pages(lambda at, size: os.pread(descriptor, size, at), header))
            if not pages or None in pages:
                return Layout(None, stamp)
            return Layout(len(pages), stamp, _largest(pages) if sizes else None)
        if fmt is Format.PDF and not pdf_pages:
            return Layout(None, stamp)
        if fmt is Format.PDF or (sizes and fmt is Format.JPEG):
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                if fmt is Format.PDF:
                    return Layout(_pdf_pages(handle), stamp)
                return Layout(1, stamp, _jpeg_size(handle))
        return Layout(1, stamp, _header_size(fmt, header) if sizes else None)
    except OSError:
        return _UNREAD
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
