"""Fixtures shared across test modules: a folder of 40 small images, and a local Ray for
the scale-out tests, started once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_batch_admission import write_png

# Ray would announce this machine's network address; the tests keep every Ray process on
# loopback. Read when Ray is imported, and inherited by the drivers the tests start.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

RAY_OBJECT_STORE_MB = 100

# A background job of a shell (``make test &``) starts with SIGINT ignored, and ``nohup``
# ignores SIGHUP; processes keep what they were started with ignored (ocrpool's workers,
# and ``ocrpool run``, do too). The tests that send these signals expect what a terminal
# gives, so the suite runs the same however it was started.
for _signum, _handler in (
    (signal.SIGINT, signal.default_int_handler),
    (signal.SIGTERM, signal.SIG_DFL),
    (signal.SIGHUP, signal.SIG_DFL),
):
    if signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, _handler)


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """40 PNGs, ``page 00.png`` to ``page 39.png``."""
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(40):
        write_png(folder / f"page {number:02d}.png")
    return folder


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """A two-CPU Ray on this machine, shared by the session; its GCS address is what a
    driver in another process passes as ``--ray-address``."""
    import ray

    context = ray.init(
        num_cpus=2,
        object_store_memory=RAY_OBJECT_STORE_MB * 1024 * 1024,
        include_dashboard=False,
    )
    yield str(context.address_info["gcs_address"])
    ray.shutdown()
