"""Hostile inputs for the property-based tests: real files of every format (to truncate),
the kinds of folder entry a scan meets, and a pool that changes files under the run.

Everything here is plain data and small helpers; the properties are in
``test_adversarial``.
"""

from __future__ import annotations

import enum
import io
import os
import random
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from ocrpool import OcrPool, OcrResult, PoolStats


def real_files() -> dict[str, bytes]:
    """A small real file of every format the scan recognises."""
    image = Image.new("L", (40, 30), 200)
    files = {}
    for fmt, suffix in (("PNG", "png"), ("JPEG", "jpg"), ("TIFF", "tif"), ("BMP", "bmp")):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        files[suffix] = buffer.getvalue()
    for fmt, suffix in (("GIF", "gif"), ("PDF", "pdf")):
        buffer = io.BytesIO()
        image.convert("P" if fmt == "GIF" else "L").save(buffer, fmt)
        files[suffix] = buffer.getvalue()
    return files


class Entry(str, enum.Enum):
    """What a folder entry is."""

    IMAGE = "image"
    EMPTY = "empty"
    GARBAGE = "random bytes"
    TRUNCATED = "truncated image"
    BOMB = "header past the pixel limit"
    TEXT_NAMED_IMAGE = "text named like an image"
    DIRECTORY_NAMED_IMAGE = "a folder named like an image"
    FIFO = "FIFO"
    SYMLINK_LOOP = "symlink to itself"
    BROKEN_SYMLINK = "broken symlink"
    FOLDER_LOOP = "symlinked folder back to an ancestor"
    UNREADABLE = "unreadable file"


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height``: decoded by nothing, sized by the admission."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(data)


def make_entry(folder: Path, name: str, entry: Entry, rng: random.Random) -> Path:
    """Create ``entry`` as ``folder/name``; the path of what a scan will meet."""
    path = folder / name
    files = real_files()
    if entry is Entry.IMAGE:
        path.write_bytes(files[rng.choice(sorted(files))])
    elif entry is Entry.EMPTY:
        path.write_bytes(b"")
    elif entry is Entry.GARBAGE:
        path.write_bytes(rng.randbytes(rng.randint(1, 200)))
    elif entry is Entry.TRUNCATED:
        data = files[rng.choice(sorted(files))]
        path.write_bytes(data[: rng.randint(1, len(data) - 1)])
    elif entry is Entry.BOMB:
        path.write_bytes(png_header(100_000, 100_000))
    elif entry is Entry.TEXT_NAMED_IMAGE:
        path.write_text("not an image")
    elif entry is Entry.DIRECTORY_NAMED_IMAGE:
        path.mkdir()
        (path / "inside.png").write_bytes(files["png"])
    elif entry is Entry.FIFO:
        os.mkfifo(path)
    elif entry is Entry.SYMLINK_LOOP:
        path.symlink_to(path)
    elif entry is Entry.BROKEN_SYMLINK:
        path.symlink_to(folder / "nowhere")
    elif entry is Entry.FOLDER_LOOP:
        path.symlink_to(folder, target_is_directory=True)
    elif entry is Entry.UNREADABLE:
        path.write_bytes(files["png"])
        path.chmod(0)
    return path


def deep_file(folder: Path, depth: int, name_bytes: int) -> None:
    """A PNG ``depth`` folders down, each named ``name_bytes`` long: past ``PATH_MAX``
    when ``depth * name_bytes`` is, which only descriptor-relative calls can build."""
    data = real_files()["png"]
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            name = f"{level:03d}" + "d" * (name_bytes - 3)
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open("deep.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, data)
        os.close(out)
    finally:
        os.close(fd)


class Change(str, enum.Enum):
    """What happens to a file between the scan and its OCR."""

    NONE = "none"
    VANISH = "vanishes"
    REWRITTEN = "rewritten"
    TRUNCATED = "emptied"
    FIFO = "replaced by a FIFO"


class ChangingPool:
    """An ``OcrPool`` shared by many runs (``close`` does nothing), which changes each
    file as the run hands it over, before a worker reads it."""

    def __init__(self, pool: OcrPool, changes: Mapping[str, Change]) -> None:
        self._pool = pool
        self._changes = changes

    def imap(self, sources: Iterable[str], **options: Any) -> Iterator[OcrResult]:
        return self._pool.imap((self._change(s) for s in sources), **options)

    def _change(self, source: str) -> str:
        change = self._changes.get(source, Change.NONE)
        if change is Change.VANISH:
            os.unlink(source)
        elif change is Change.REWRITTEN:
            Path(source).write_bytes(b"other bytes now")
        elif change is Change.TRUNCATED:
            Path(source).write_bytes(b"")
        elif change is Change.FIFO:
            os.unlink(source)
            os.mkfifo(source)
        return source

    def stats(self) -> PoolStats:
        return self._pool.stats()

    def close(self) -> None:
        pass

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        pass
