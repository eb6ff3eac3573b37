"""The benchmark's inputs: the images of a folder, repeated to the number of jobs."""

from __future__ import annotations

import itertools
from pathlib import Path

from ocrpool.formats import sniff_file

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = REPO / "examples" / "images"
"""The sample images shipped with ocrpool (the project must not need anything else)."""
TEST_DATA = REPO / "tests" / "data"
"""The test images, and the ground truth (``<image stem>.gt.txt``) of some images."""


def images_in(folder: Path) -> list[Path]:
    """The files of ``folder`` whose first bytes name an image or PDF format, by name."""
    images = [p for p in sorted(folder.iterdir()) if p.is_file() and sniff_file(str(p))]
    if not images:
        raise ValueError(f"no images in {folder}")
    return images


def sources(folder: Path, jobs: int) -> tuple[str, ...]:
    """``jobs`` paths cycling through the folder's images, so every scenario gets the same."""
    return tuple(str(p) for p in itertools.islice(itertools.cycle(images_in(folder)), jobs))
