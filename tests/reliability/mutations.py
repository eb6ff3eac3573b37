"""Damaged copies of real scans for fuzzing the engine: the shipped images as PNG, TIFF,
JPEG and PDF, with bytes flipped at seeded random places."""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent.parent
SCANS = (
    REPO / "examples" / "images" / "phototest.tif",
    REPO / "examples" / "images" / "eurotext.tif",
    REPO / "examples" / "images" / "multipage-3.tif",
    REPO / "examples" / "images" / "skimage-page.png",
    REPO / "tests" / "data" / "HelloGoogle.tif",
    REPO / "tests" / "data" / "phototest-rotated-180.png",
)
"""Every real scan the repository ships (with their licenses beside them)."""
HEADER_BYTES = 16
"""Flips land past the signature nine times in ten: a broken signature is refused before
any decoder sees it, which says little about the decoder."""


def seeds() -> dict[str, bytes]:
    """One real file per format: PNG and TIFF as shipped, JPEG and PDF made from them."""
    page = Image.open(SCANS[0])
    jpeg, pdf = io.BytesIO(), io.BytesIO()
    page.convert("L").save(jpeg, "JPEG", quality=90)
    page.convert("L").save(pdf, "PDF", resolution=150)
    return {
        "png": SCANS[3].read_bytes(),
        "tiff": SCANS[0].read_bytes(),
        "jpeg": jpeg.getvalue(),
        "pdf": pdf.getvalue(),
    }


def mutate(data: bytes, rng: random.Random, flips: int) -> bytes:
    """``data`` with ``flips`` bytes XORed with random non-zero values."""
    damaged = bytearray(data)
    for _ in range(flips):
        low = HEADER_BYTES if rng.random() < 0.9 and len(data) > HEADER_BYTES else 0
        damaged[rng.randrange(low, len(data))] ^= rng.randrange(1, 256)
    return bytes(damaged)


def mutants(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` damaged files, formats in turn, 1 to 32 flips each."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    originals = seeds()
    formats = sorted(originals)
    paths = []
    for number in range(count):
        fmt = formats[number % len(formats)]
        path = folder / f"mutant-{number:04d}.{fmt}"
        path.write_bytes(mutate(originals[fmt], rng, rng.randint(1, 32)))
        paths.append(path)
    return paths
