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
    if fmt is Format.GIF:
        return _gif_size(handle)
    return _header_size(fmt, header)


def _header_size(fmt: Format | None, header: bytes) -> tuple[int, int] | None:
    """The size a PNG or BMP declares in its first ``_SIZE_HEADER_BYTES``; ``None`` for
    any other format."""
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
_JPEG_MAX_SEGMENTS = 10_000
_JPEG_BLOCK = 4096
_GIF_MAX_BLOCKS = 100_000


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


def _png_size(header: bytes) -> tuple[int, int] | None:
    if len(header) < 24 or header[12:16] != b"IHDR":
        return None
    return _positive(int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big"))


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
    Format.BMP: _bmp_size,
}


def _gif_size(handle: BinaryIO) -> tuple[int, int] | None:
    """The canvas a decoder draws: the logical screen, grown to every frame's extent
    (its left plus width, top plus height), frames found by walking the blocks; ``None``
    past ``_GIF_MAX_BLOCKS`` blocks (no real GIF has that many)."""
    handle.seek(0)
    head = handle.read(13)
    if len(head) < 13:
        return None
    width, height = int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    _skip_colour_table(handle, head[10])
    for _ in range(_GIF_MAX_BLOCKS):
        kind = handle.read(1)
        if kind == b"\x2c":  # an image: left, top, width, height, then its colour table
            image = handle.read(9)
            if len(image) < 9:
                break
            left, top, frame_width, frame_height = struct.unpack_from("<4H", image)
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            _skip_colour_table(handle, image[8])
            handle.read(1)  # the LZW code size, then the data
        elif kind == b"\x21":  # an extension: its label, then its data
            handle.read(1)
        else:  # the trailer, the end of the file, or bytes no decoder reads on past
            break
        if not _skipped_sub_blocks(handle):
            break
    else:
        return None
    return _positive(width, height)


def _skip_colour_table(handle: BinaryIO, packed: int) -> None:
    if packed & 0x80:
        handle.seek(3 * (2 << (packed & 7)), os.SEEK_CUR)


def _skipped_sub_blocks(handle: BinaryIO) -> bool:
    """Skip data sub-blocks up to their terminator; ``False`` at the end of the file."""
    while True:
        length = handle.read(1)
        if not length:
            return False
        if not length[0]:
            return True
        handle.seek(length[0], os.SEEK_CUR)


def _jpeg_size(handle: BinaryIO) -> tuple[int, int] | None:
    """The largest frame declared before the first scan (a decoder takes the last of
    several), from the marker segments' headers; ``None`` if there is none, a frame has
    no size, or the scan is more than ``_JPEG_MAX_SEGMENTS`` segments away (no JPEG a
    camera or scanner writes has that many)."""
    handle.seek(2)
    largest: tuple[int, int] | None = None
    for _ in range(_JPEG_MAX_SEGMENTS):
        code = _next_marker(handle)
        if code is None or code in (0xD9, 0xDA):  # the end, or the scan
            return largest
        if code in _JPEG_STANDALONE:
            continue
        length_bytes = handle.read(2)
        if len(length_bytes) < 2:
            return largest
        length = int.from_bytes(length_bytes, "big")
        if length < 2:
            return None
        end = handle.tell() - 2 + length
        if code in _JPEG_SOF:
            frame = handle.read(5)
            if len(frame) < 5:
                return largest
            size = _positive(int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big"))
            if size is None:
                return None
            if largest is None or size[0] * size[1] > largest[0] * largest[1]:
                largest = size
        handle.seek(end)
    return None


def _next_marker(handle: BinaryIO) -> int | None:
    """The code of the next marker (an 0xFF, any 0xFF fill bytes, then the code), stray
    bytes before it skipped a block at a time; ``handle`` is left just after the code.
    ``None`` at the end."""
    found = False  # an 0xFF was read: what follows is fill or the code
    while True:
        at = handle.tell()
        block = handle.read(_JPEG_BLOCK)
        if not block:
            return None
        skip = 0
        if not found:
            skip = block.find(b"\xff")
            if skip < 0:
                continue
            found, skip = True, skip + 1
        rest = block[skip:].lstrip(b"\xff")
        if rest:
            handle.seek(at + len(block) - len(rest) + 1)
            return rest[0]


_WALKED: dict[Format, Callable[[BinaryIO], tuple[int, int] | None]] = {
    Format.JPEG: _jpeg_size,
    Format.GIF: _gif_size,
}
"""Formats whose size is found by walking the file, not in its first bytes."""


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
_TIFF_READ_BUDGET = 64 * 2**20
"""Bytes a walk of the directories may read: 100,000 ordinary pages take about 50 MB.
Past it the file is too broken to say, so a crafted chain of directories that each claim
65,535 entries cannot make a count read gigabytes."""


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
    budget = _TIFF_READ_BUDGET
    while offset and offset not in seen:
        if len(seen) == _MAX_TIFF_PAGES or budget <= 0:  # past any document: cannot say
            yield None
            return
        seen.add(offset)
        block = read_at(offset, _IFD_READ)
        if len(block) < 2:
            yield None
            return
        end = 2 + 12 * short.unpack_from(block)[0]
        page = _ifd_size(block, end, short, long, entry)
        if page is None and len(block) == _IFD_READ < end:  # entries past the first read
            block = read_at(offset, end + 4)
            page = _ifd_size(block, end, short, long, entry)
        following = block[end : end + 4] if len(block) >= end + 4 else read_at(offset + end, 4)
        budget -= len(block)
        yield page
        if page is None or len(following) < 4:
            return
        offset = long.unpack_from(following)[0]


def _ifd_size(
    block: bytes, end: int, short: struct.Struct, long: struct.Struct, entry: struct.Struct
) -> tuple[int, int] | None:
    """The page size a directory's entries in ``block`` (up to ``end``) declare."""
    size = {256: 0, 257: 0}  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
    for at in range(2, min(end, len(block) - 11), 12):
        tag, kind, value = entry.unpack_from(block, at)
        if tag in size:
            size[tag] = (short if kind == 3 else long).unpack_from(value)[0]
            if size[256] and size[257]:
                break
    return _positive(size[256], size[257])


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
a cache eviction. A document split and read on one machine (counted by a local pool's
worker) carries its ``FileId`` instead, which a rewrite with the modification time set
back does not pass."""


def unchanged(path: str, stamp: tuple[int, ...] | None) -> bool:
    """Whether the file at ``path`` is still the one ``stamp`` (a ``Stamp`` or a
    ``FileId``) was taken of; ``None``: not checked."""
    if stamp is None:
        return True
    try:
        info = os.stat(path)
    except OSError:
        return False
    return same_file(info, stamp)


def same_file(info: os.stat_result, stamp: tuple[int, ...]) -> bool:
    """Whether ``info`` is of the file ``stamp`` (a ``Stamp`` or a ``FileId``) was taken of."""
    now = file_id(info) if len(stamp) == _FILE_ID_FIELDS else (info.st_size, info.st_mtime_ns)
    return now == tuple(stamp)


def file_page_count(path: str) -> int | None:
    """``page_count`` of the regular file at ``path``; ``None`` for anything else, or when
    it cannot be read."""
    return file_layout(path).pages


FileId = tuple[int, int, int, int, int]
"""A file on this machine as ``os.stat`` knows it: device, inode, size, modification
and change time. Any write, rename or replacement changes it, and the change time
cannot be set back (``touch -r`` sets the modification time only)."""


def file_id(info: os.stat_result) -> FileId:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


_FILE_ID_FIELDS = 5


class Layout(NamedTuple):
    """What ``file_layout`` read of a file, without decoding it."""

    pages: int | None
    """``page_count``: ``None`` when not a regular file, unreadable, or too broken to say."""
    stamp: Stamp | None
    largest: tuple[int, int] | None = None
    """The largest page's ``(width, height)``, when asked for and declared (not a PDF's)."""
    format: Format | None = None
    identity: FileId | None = None
    """The ``FileId`` of the file read, to tell whether a later reader read the same."""


_UNREAD = Layout(None, None)


def file_layout(path: str, *, sizes: bool = False, pdf_pages: bool = True) -> Layout:
    """The pages of the file at ``path``, the ``Stamp`` of the very file counted (read
    from the descriptor counted through, so a file replaced meanwhile cannot pair its
    stamp with the old file's count) and, with ``sizes``, its largest page. Opened
    without blocking and checked before any read: opening a FIFO would block, and reading
    it eat its data. A pool runs this for every path job, so it reads with ``pread`` and
    no file object: a PNG or BMP is told, size and all, from its first bytes, a TIFF
    from its directories; only a JPEG's or GIF's size and a PDF's pages need more (with
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
        pages: int | None = None
        largest: tuple[int, int] | None = None
        if fmt is Format.TIFF:
            sized = list(_tiff_pages(lambda at, size: os.pread(descriptor, size, at), header))
            if sized and None not in sized:
                pages, largest = len(sized), _largest(sized) if sizes else None
        elif fmt is Format.PDF and pdf_pages:
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                pages = _pdf_pages(handle)
        elif fmt in _WALKED and sizes:
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                pages, largest = 1, _WALKED[fmt](handle)
        elif fmt is not None and fmt is not Format.PDF:
            pages, largest = 1, _header_size(fmt, header) if sizes else None
        return Layout(pages, stamp, largest, fmt, file_id(info))
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
