"""Image headers, the pixel limit and what counts as an input (``formats.image_size``,
``ocrpool.batch.admission``)."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from ocrpool.batch import admission
from ocrpool.batch.admission import admit, admit_bytes, stat_input
from ocrpool.batch.scan import Skipped, SkipReason
from ocrpool.errors import ImageTooLarge, InvalidInput, OutOfResources
from ocrpool.formats import DEFAULT_MAX_PIXELS, Format, image_size


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk declaring ``width`` x ``height``: enough for every
    check before the engine (the fake engine never decodes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def write_png(path: Path | str, width: int = 8, height: int = 8) -> Path:
    path = Path(path)
    path.write_bytes(png_header(width, height))
    return path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "TIFF"])
def test_image_size_reads_real_files(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"x.{fmt.lower()}"
    Image.new("RGB", (123, 45)).save(path, fmt)
    assert image_size(str(path)) == (123, 45)


def test_image_size_of_progressive_jpeg_with_exif(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    exif = Image.Exif()
    exif[0x010E] = "a description long enough to matter" * 20
    Image.new("RGB", (50, 60)).save(path, "JPEG", progressive=True, exif=exif)
    assert image_size(str(path)) == (50, 60)


def test_image_size_of_multipage_tiff_is_its_largest_page(tmp_path: Path) -> None:
    path = tmp_path / "m.tif"
    pages = [Image.new("L", (300, 20)), Image.new("L", (5, 5))]
    Image.new("L", (10, 10)).save(path, save_all=True, append_images=pages)
    assert image_size(str(path)) == (300, 20)


def test_image_size_of_bmp_stored_top_down(tmp_path: Path) -> None:
    path = tmp_path / "x.bmp"
    Image.new("RGB", (7, 9)).save(path)
    data = bytearray(path.read_bytes())
    data[22:26] = struct.pack("<i", -9)
    path.write_bytes(bytes(data))
    assert image_size(str(path)) == (7, 9)


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n",  # truncated before IHDR
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",  # no frame header
        b"II*\x00\x08\x00\x00\x00\x00\x00",  # a TIFF directory without a size
        b"%PDF-1.7\n",
        b"plain text",
    ],
)
def test_image_size_is_none_when_the_header_cannot_say(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x"
    path.write_bytes(content)
    assert image_size(str(path)) is None


def test_a_tiff_whose_directories_loop_ends(tmp_path: Path) -> None:
    entry = struct.pack("<HHII", 256, 4, 1, 10) + struct.pack("<HHII", 257, 4, 1, 20)
    ifd = struct.pack("<H", 2) + entry + struct.pack("<I", 8)  # the next IFD is itself
    path = tmp_path / "loop.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd)
    assert image_size(str(path)) == (10, 20)


def _admit(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Format | Skipped:
    return admit(str(path), stat_input(str(path)), max_pixels=max_pixels)


def test_content_decides_the_format_not_the_name(tmp_path: Path) -> None:
    assert _admit(write_png(tmp_path / "scan.dat")) is Format.PNG


def test_a_decompression_bomb_is_refused_before_any_engine(tmp_path: Path) -> None:
    bomb = write_png(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(ImageTooLarge, match="10000000000 pixels is over the limit of 178956970"):
        _admit(bomb)
    assert _admit(bomb, max_pixels=None) is Format.PNG


def test_files_that_are_not_inputs_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# notes")
    (tmp_path / "empty.log").write_bytes(b"")
    os.mkfifo(tmp_path / "pipe")
    assert _admit(tmp_path / "README.md") == Skipped(
        str(tmp_path / "README.md"), SkipReason.NOT_AN_IMAGE
    )
    assert isinstance(skipped := _admit(tmp_path / "empty.log"), Skipped)
    assert skipped.message == "not an image: empty file"
    assert _admit(tmp_path / "pipe") == Skipped(str(tmp_path / "pipe"), SkipReason.NOT_A_FILE)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.png", b"", "empty file (0 bytes)"),
        ("notes.jpg", b"just some text", "not an image: the content is not PNG, JPEG"),
        ("torn.png", b"\x89PNG\r\n\x1a\n\x00\x00", "corrupt PNG: cannot read the image size"),
    ],
)
def test_a_name_that_claims_an_image_fails_when_the_content_does_not(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InvalidInput) as caught:
        _admit(tmp_path / name)
    assert caught.value.message.startswith(message)


def test_stat_failures_say_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "broken.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    expected = {
        "broken.png": f"broken symlink: its target {tmp_path / 'gone.png'} does not exist",
        "loop.png": "symlink loop: the link resolves to itself",
        "missing.png": "no such file",
    }
    for name, message in expected.items():
        with pytest.raises(InvalidInput) as caught:
            stat_input(str(tmp_path / name))
        assert caught.value.message == message


def test_bytes_pass_the_same_rule_as_files(tmp_path: Path) -> None:
    real = tmp_path / "x.jpg"
    Image.new("RGB", (30, 20)).save(real, "JPEG")
    assert admit_bytes(real.read_bytes(), max_pixels=DEFAULT_MAX_PIXELS) is Format.JPEG
    assert admit_bytes(b"%PDF-1.4\n", max_pixels=DEFAULT_MAX_PIXELS) is Format.PDF
    with pytest.raises(ImageTooLarge, match="decompression bomb") as bomb:
        admit_bytes(png_header(100_000, 100_000), max_pixels=DEFAULT_MAX_PIXELS)
    assert (bomb.value.width, bomb.value.height, bomb.value.input) == (100_000, 100_000, None)
    assert admit_bytes(png_header(100_000, 100_000), max_pixels=None) is Format.PNG
    for data, message in [
        (b"", "empty"),
        (b"hello", "not an image"),
        (b"\x89PNG\r\n\x1a\n", "corrupt PNG"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            admit_bytes(data, max_pixels=DEFAULT_MAX_PIXELS)


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOMEM])
def test_a_process_short_of_descriptors_or_memory_is_not_the_input_s_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """It was ``InvalidInput`` ("cannot read: Too many open files"), recorded as the
    input's failure for good."""
    path = tmp_path / "fine.png"
    write_png(path)

    def refuse(_: str) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(admission, "sniff_file", refuse)
    with pytest.raises(OutOfResources) as raised:
        admission.admit(str(path), os.stat(path), max_pixels=None)
    assert raised.value.path == str(path) and raised.value.reason == os.strerror(code)
