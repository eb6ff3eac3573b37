"""Embedding ocrpool: futures, a streaming imap, asyncio, and the pool's own view of itself.

Run from the repository root: .venv/bin/python examples/embed.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ocrpool import OcrPool, WorkerExit

IMAGES = sorted(str(p) for p in Path("examples/images").glob("*.tif"))


def on_exit(event: WorkerExit) -> None:
    print(f"  worker {event.pid} exited: {event.cause.value} after {event.jobs} jobs")


async def ocr_upload(pool: OcrPool, data: bytes) -> str:
    result = await pool.arecognize(data, label="upload.tif")
    return result.text


def main() -> None:
    with OcrPool(workers=2, max_jobs_per_worker=2, on_worker_exit=on_exit) as pool:
        first = pool.submit(IMAGES[0]).result()
        print(f"{first.input}: {first.text.splitlines()[0]!r} ({len(first.pages)} page(s))")

        for result in pool.imap(IMAGES * 2, ordered=False):
            status = "ok" if result.ok else f"{type(result.error).__name__}: {result.error}"
            print(
                f"  {Path(result.input).name}: {status}, worker {result.worker_pid}, "
                f"{result.elapsed_s:.1f}s, RSS {result.rss_mb:.0f} MB"
            )

        text = asyncio.run(ocr_upload(pool, Path(IMAGES[-1]).read_bytes()))
        print(f"asyncio: {text.splitlines()[0]!r}")

        stats = pool.stats()
        print(f"completed {stats.completed}, failed {stats.failed}, exits {stats.exits}")


if __name__ == "__main__":
    main()
