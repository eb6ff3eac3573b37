"""Helpers for pool tests on the fake engine (plain functions, imported by the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil

from ocrpool import OcrPool
from tests.support.served import pool_workers

FAST: dict[str, Any] = dict(engine="fake", job_timeout=30, kill_grace=0.5, recycle_jitter=0.0)
"""Pool settings for tests: the fake engine, short grace periods, no random jitter."""


def make_inputs(folder: Path, names: list[str]) -> list[str]:
    """Create one small non-empty file per name and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / name
        path.write_bytes(b"fake image")
        paths.append(str(path))
    return paths


def fake_pool(**settings: Any) -> OcrPool:
    return OcrPool(**{**FAST, **settings})


def worker_processes(parent: psutil.Process | None = None) -> list[psutil.Process]:
    """The live pool workers below ``parent`` (default: this process)."""
    return pool_workers(parent or psutil.Process())


def make_document(path: Path, pages: int) -> str:
    """A ``pages``-page TIFF of small blank pages, each its own size (Pillow drops a page
    identical to the one before it)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [Image.new("L", (40 + number, 30), 255) for number in range(pages)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return str(path)
