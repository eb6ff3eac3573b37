"""The pool's own limits on an input (``max_pixels``, ``max_pages``): checked by the
worker just before its engine reads it, so a file changed after the caller's checks (the
service's ``?path=`` admission, ``ocrpool run``'s scan) cannot take a decompression bomb
or a long document past them."""

from __future__ import annotations

import io
import os
import signal
import struct
from pathlib import Path
from typing import Any

import pytest
from fakes import fake_pool, make_document
from PIL import Image
from test_batch_admission import png_header, write_png

from ocrpool import (
    DocumentTooLong,
    ImageTooLarge,
    InvalidInput,
    JobOptions,
    PoolConfig,
    formats,
)
from ocrpool.batch.admission import admit, stat_input
from ocrpool.engines.base import PageSpan, Source
from ocrpool.engines.fake import FakeEngine
from ocrpool.formats import (
    DEFAULT_MAX_PIXELS,
    Format,
    file_id,
    file_layout,
    page_count,
    read_image_size,
)
from ocrpool.results import Recognition


def test_an_image_past_the_limit_fails_in_its_worker_which_serves_on(tmp_path: Path) -> None:
    bomb, fine = write_png(tmp_path / "bomb.png", 100_000, 100_000), write_png(tmp_path / "a.png")
    with fake_pool(workers=1, spares=0, max_pixels=DEFAULT_MAX_PIXELS) as pool:
        [worker] = pool.stats().workers
        refused, read = pool.submit(str(bomb)), pool.submit(str(fine))
        error = refused.exception()
        assert read.result().text == "a"
        stats = pool.stats()
    assert isinstance(error, ImageTooLarge)
    assert (error.width, error.height, error.max_pixels) == (100_000, 100_000, DEFAULT_MAX_PIXELS)
    assert error.input == str(bomb) and "the pool's max_pixels" in error.message
    assert (stats.failed, stats.completed, stats.retries, stats.quarantined) == (1, 1, 0, ())
    assert [w.pid for w in stats.workers] == [worker.pid] and stats.exits == {}


@pytest.mark.parametrize("limit", [None, 0])
def test_no_limit_lets_the_engine_read_what_it_is_given(tmp_path: Path, limit: int | None) -> None:
    bomb = write_png(tmp_path / "bomb.png", 100_000, 100_000)
    with fake_pool(workers=1, spares=0, max_pixels=limit) as pool:
        assert pool.submit(str(bomb)).result().text == "bomb"
        assert pool.submit(png_header(100_000, 100_000), label="bytes").result().ok


def test_a_file_replaced_by_a_bomb_after_the_callers_check_is_refused_where_it_is_read(
    tmp_path: Path,
) -> None:
    """The worker is stopped while the job waits in its pipe: the file is replaced after
    both the caller's admission and ``submit``, before any read by the worker."""
    path = write_png(tmp_path / "scan.png")
    assert admit(str(path), stat_input(str(path)), max_pixels=DEFAULT_MAX_PIXELS) is Format.PNG
    with fake_pool(workers=1, spares=0, max_pixels=DEFAULT_MAX_PIXELS) as pool:
        [worker] = pool.stats().workers
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            future = pool.submit(str(path))
            write_png(tmp_path / "bomb.png", 50_000, 50_000).replace(path)
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        error = future.exception()
        assert [w.pid for w in pool.stats().workers] == [worker.pid]
    assert isinstance(error, ImageTooLarge) and (error.width, error.height) == (50_000, 50_000)


def test_bytes_past_the_limit_fail_in_the_worker(tmp_path: Path) -> None:
    with fake_pool(workers=1, spares=0, max_pixels=DEFAULT_MAX_PIXELS) as pool:
        error = pool.submit(png_header(20_000, 20_000), label="upload").exception()
    assert isinstance(error, ImageTooLarge) and (error.width, error.height) == (20_000, 20_000)


def _tiff_bytes(sizes: list[tuple[int, int]]) -> bytes:
    frames = [Image.new("1", size, 1) for size in sizes]
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def test_a_document_with_a_page_past_the_limit_is_refused_whole_never_split(
    tmp_path: Path,
) -> None:
    """Pages of 40..51 x 30 pixels: 1,200 to 1,530. Split, a page job would be read
    without the check (its document was checked when counted), so such a document is
    one job, which its worker refuses; from a path (counted by the worker) and from bytes
    (counted in the caller)."""
    doc = make_document(tmp_path / "doc.tif", 12)
    data = _tiff_bytes([(40 + n, 30) for n in range(12)])
    with fake_pool(workers=2, spares=0, max_pixels=1_500) as pool:
        errors = [pool.submit(doc).exception(), pool.submit(data, label="doc").exception()]
        stats = pool.stats()
    for error in errors:
        assert isinstance(error, ImageTooLarge) and (error.width, error.height) == (51, 30)
    assert stats.pages.documents == 0 and stats.submitted == 2 and stats.failed == 2
    with fake_pool(workers=2, spares=0, max_pixels=1_600) as pool:
        assert len(pool.submit(doc).result().pages) == 12
        assert pool.stats().pages.documents == 1


@pytest.mark.parametrize("split_pages", [True, False])
def test_a_document_past_the_page_limit_is_refused_whole_never_split(
    tmp_path: Path, split_pages: bool
) -> None:
    """From a path (counted by the worker) and from bytes (by the caller, then by the
    worker), split or not; the fake engine would read either whole."""
    doc = make_document(tmp_path / "doc.tif", 12)
    data = _tiff_bytes([(40 + n, 30) for n in range(12)])
    settings = dict(workers=2, spares=0, split_pages=split_pages, max_pages=11)
    with fake_pool(**settings) as pool:
        errors = [pool.submit(doc).exception(), pool.submit(data, label="doc").exception()]
        stats = pool.stats()
    for error, name in zip(errors, [doc, None], strict=True):
        assert isinstance(error, DocumentTooLong) and error.input == name
        assert (error.pages, error.max_pages) == (12, 11)
    assert stats.pages.documents == 0 and stats.submitted == 2 and stats.failed == 2
    with fake_pool(**{**settings, "max_pages": 12}) as pool:
        assert len(pool.submit(doc).result().pages) == 12
        assert pool.submit(data, label="doc").result().ok  # whole, the fake engine reads 1


def test_a_path_that_grew_past_the_page_limit_after_submit_is_refused(tmp_path: Path) -> None:
    path = make_document(tmp_path / "doc.tif", 2)
    with fake_pool(workers=1, spares=0, max_pages=5) as pool:
        [worker] = pool.stats().workers
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            future = pool.submit(path)
            Path(make_document(tmp_path / "long.tif", 40)).replace(path)
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        error = future.exception()
        stats = pool.stats()
    assert isinstance(error, DocumentTooLong) and (error.pages, error.max_pages) == (40, 5)
    assert stats.pages.documents == 0 and stats.submitted == 1


def test_the_largest_page_is_read_with_the_pages_and_only_when_asked(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "doc.tif", 5)
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48)).save(jpeg)
    info = os.stat(doc)
    layout = file_layout(doc)
    assert (layout.pages, layout.stamp, layout.largest) == (
        5,
        (info.st_size, info.st_mtime_ns),
        None,
    )
    assert (layout.format, layout.identity) == (Format.TIFF, file_id(info))
    assert file_layout(doc, sizes=True).largest == (44, 30)
    assert file_layout(str(jpeg), sizes=True)[:3:2] == (1, (64, 48))
    assert file_layout(str(write_png(tmp_path / "a.png", 7, 9)), sizes=True).largest == (7, 9)
    assert file_layout(str(tmp_path), sizes=True) == (None,) * 5
    pdf = tmp_path / "doc.pdf"
    Image.new("L", (20, 20), 255).save(pdf, save_all=True, append_images=[Image.new("L", (9, 9))])
    assert file_layout(str(pdf), sizes=True)[:4:2] == (2, None)  # no pixel size until rendered
    assert file_layout(str(pdf), pdf_pages=False).pages is None  # a worker not splitting


def test_the_limits_must_be_in_range() -> None:
    with pytest.raises(ValueError, match="max_pixels must be 0 or more"):
        PoolConfig(max_pixels=-1)
    with pytest.raises(ValueError, match="max_pages must be at least 1 or None"):
        PoolConfig(max_pages=0)


class SwappingEngine(FakeEngine):
    """The fake engine, whose input named ``swap*`` is replaced (``swap_by="rename"``) or
    rewritten in place with its modification time set back (``"rewrite"``) as it starts
    reading: what another process could do between the worker's check and the read."""

    def __init__(self, *, swap_by: str = "rename", **options: Any) -> None:
        super().__init__(**options)
        self._swap_by = swap_by

    def recognize(self, source: Source, options: JobOptions | None = None) -> Recognition:
        if isinstance(source, PageSpan) and source.start == 0:  # a document's first page
            path = Path(source.path)
            before = path.stat()
            path.write_bytes(path.read_bytes())  # the same size, and the same bytes even
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        if isinstance(source, str) and os.path.basename(source).startswith("swap"):
            before = os.stat(source)
            if self._swap_by == "rename":
                os.replace(write_png(source + ".new", 5_000, 5_000), source)
            else:
                Path(source).write_bytes(png_header(5_000, 5_000))
                os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
        return super().recognize(source, options)


@pytest.mark.parametrize("swap_by", ["rename", "rewrite"])
def test_a_file_replaced_while_the_engine_reads_it_gives_no_result(
    tmp_path: Path, swap_by: str
) -> None:
    """Checked, then changed before the engine's read ends: the result may be another
    file's (past the limits, here), so it is refused, even with the same size and
    modification time (its change time moved)."""
    swapped, kept = write_png(tmp_path / "swap.png"), write_png(tmp_path / "kept.png")
    engine = f"{__name__}:SwappingEngine"
    options = {"swap_by": swap_by}
    with fake_pool(
        workers=1, spares=0, engine=engine, engine_options=options, max_pixels=10**8
    ) as pool:
        error = pool.submit(str(swapped)).exception()
        assert pool.submit(str(kept)).result().text == "kept"
    assert isinstance(error, InvalidInput) and not isinstance(error, ImageTooLarge)
    assert "replaced or changed while it was read" in error.message
    assert error.input == str(swapped)


def test_a_split_document_rewritten_with_its_mtime_set_back_is_not_read_on(
    tmp_path: Path,
) -> None:
    """Counted by a worker, the document's page jobs carry its ``FileId``: a rewrite that
    keeps the size and sets the modification time back (``touch -r``) still changes the
    change time, so the page being read and every page after it are refused."""
    doc = make_document(tmp_path / "doc.tif", 4)
    engine = f"{__name__}:SwappingEngine"
    with fake_pool(workers=1, spares=0, engine=engine) as pool:
        result = pool.submit_result(doc).result()
    assert isinstance(result.error, InvalidInput)  # every page failed, for that one reason
    assert "replaced or changed after it was split" in result.error.message
    assert len(result.pages) == 4 and all(page.error is not None for page in result.pages)


def _jpeg(*segments: bytes) -> bytes:
    return b"\xff\xd8" + b"".join(segments) + b"\xff\xda\x00\x02" + b"\x00" * 8 + b"\xff\xd9"


def _frame(width: int, height: int) -> bytes:
    return b"\xff\xc0" + struct.pack(">HBHHB", 8, 8, height, width, 1)


def test_a_jpeg_declares_its_largest_frame_and_no_walk_is_unbounded() -> None:
    empty = b"\xff\xe1\x00\x02"  # an APP1 segment with nothing in it
    cases = {
        _jpeg(_frame(10, 10), _frame(10_000, 9_000)): (10_000, 9_000),  # decoders take the last
        _jpeg(b"\xff" * 100_000, _frame(64, 48)): (64, 48),  # fill bytes, a block at a time
        _jpeg(empty, b"\x00junk" * 50_000, _frame(64, 48)): (64, 48),  # stray bytes skipped
        _jpeg(empty * 9_000, _frame(64, 48)): (64, 48),
        _jpeg(empty * 10_000, _frame(64, 48)): None,  # past 10,000 segments: cannot say
        _jpeg(_frame(0, 48)): None,
    }
    for data, size in cases.items():
        assert read_image_size(io.BytesIO(data)) == size
    with fake_pool(workers=1, spares=0, max_pixels=10**8) as pool:  # a size it cannot read
        error = pool.submit(_jpeg(empty * 10_000, _frame(64, 48)), label="x").exception()
    assert (
        isinstance(error, InvalidInput)
        and error.message == "corrupt JPEG: cannot read the image size"
    )


def _tiff(directories: list[bytes]) -> bytes:
    """A little-endian TIFF of ``directories`` (each its entries, packed), chained."""
    data = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for index, entries in enumerate(directories):
        count = len(entries) // 12
        following = 0 if index == len(directories) - 1 else len(data) + 2 + len(entries) + 4
        data += struct.pack("<H", count) + entries + struct.pack("<I", following)
    return bytes(data)


def _size_entries(width: int, height: int) -> bytes:
    return struct.pack("<HHII", 256, 4, 1, width) + struct.pack("<HHII", 257, 4, 1, height)


def test_a_tiff_walk_reads_little_of_huge_directories_and_stops_past_any_document() -> None:
    """Directories that claim 65,535 entries each were read whole (786 kB each, gigabytes
    for a crafted chain); now only their first block when the sizes are there."""
    claimed = bytearray(_tiff([_size_entries(100, 50)] * 300))
    at = 8
    for _ in range(300):  # each directory now claims 65,535 entries; the next still follows
        entries = struct.unpack_from("<H", claimed, at)[0]
        struct.pack_into("<H", claimed, at, 65_535)
        at += 2 + 12 * entries + 4
    read: list[int] = []

    def read_at(offset: int, size: int) -> bytes:
        read.append(size)
        return bytes(claimed[offset : offset + size])

    pages = list(formats._tiff_pages(read_at, bytes(claimed[:32])))
    assert pages[0] == (100, 50) and sum(read) < 300 * 1_024


def test_a_tiff_past_100000_pages_is_unknown_and_refused_under_a_limit() -> None:
    data = _tiff([_size_entries(10, 10)] * 100_001)
    assert page_count(io.BytesIO(data)) is None and read_image_size(io.BytesIO(data)) is None
    assert page_count(io.BytesIO(_tiff([_size_entries(10, 10)] * 3))) == 3


def _gif(screen: tuple[int, int], *frames: tuple[int, int, int, int]) -> bytes:
    """A GIF of a logical screen and frames (left, top, width, height), no colour tables,
    each frame's data one sub-block."""
    data = b"GIF89a" + struct.pack("<HHBBB", *screen, 0, 0, 0)
    data += b"\x21\xf9\x04\x00\x00\x00\x00\x00"  # a graphic control extension
    for frame in frames:
        data += b"\x2c" + struct.pack("<4HB", *frame, 0) + b"\x02" + b"\x02\x4c\x01\x00"
    return data + b"\x3b"


def test_a_gif_is_as_large_as_its_largest_frame_reaches() -> None:
    """Decoders draw a frame past the logical screen on a canvas grown to hold it."""
    assert read_image_size(io.BytesIO(_gif((1, 1), (0, 0, 10_000, 9_000)))) == (10_000, 9_000)
    grown = _gif((100, 100), (0, 0, 50, 50), (90, 80, 30, 40))
    assert read_image_size(io.BytesIO(grown)) == (120, 120)
    assert read_image_size(io.BytesIO(_gif((64, 48)))) == (64, 48)  # no frame: the screen
    frames = [Image.new("P", (30 + n, 20), n) for n in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert read_image_size(io.BytesIO(buffer.getvalue())) == Image.open(buffer).size
