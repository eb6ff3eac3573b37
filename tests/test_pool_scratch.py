"""The pool's own folder (``ocrpool.pool.scratch``): removed at close, and swept by the
next pool when a killed one left it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from fakes import fake_pool, make_inputs

from ocrpool.pool.scratch import LOCK, PoolFolder, sweep_stale

_HOLD = (
    "import sys; from ocrpool.pool.scratch import PoolFolder; "
    "print(PoolFolder(sys.argv[1]).path, flush=True); sys.stdin.read()"
)


def _holder(root: Path) -> tuple[subprocess.Popen[str], str]:
    """A process holding a pool folder under ``root`` until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_a_killed_pools_folder_is_swept_and_no_live_one_is(tmp_path: Path) -> None:
    killed, killed_path = _holder(tmp_path)
    (Path(killed_path) / "document-x").write_bytes(b"left behind")
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=10) == -signal.SIGKILL
    alive, alive_path = _holder(tmp_path)
    ours = PoolFolder(str(tmp_path))
    foreign = tmp_path / "ocrpool-export-abc"  # a folder without a lock: never ours to judge
    foreign.mkdir()
    (tmp_path / "ocrpool-file").write_bytes(b"")
    try:
        newest = PoolFolder(str(tmp_path))  # sweeps as it starts
        assert not os.path.exists(killed_path)
        assert all(os.path.isfile(os.path.join(p, LOCK)) for p in (alive_path, ours.path))
        assert foreign.is_dir() and (tmp_path / "ocrpool-file").is_file()
        assert os.path.basename(newest.path).startswith(f"ocrpool-{os.getpid()}-")
        newest.remove()
        assert not os.path.exists(newest.path)
    finally:
        assert alive.stdin is not None
        alive.stdin.close()
        alive.wait(timeout=10)
        ours.remove()
    assert sweep_stale(str(tmp_path)) == [alive_path]  # its process ended without removing it


def test_a_folder_removed_under_a_live_pool_is_made_again_with_its_lock(tmp_path: Path) -> None:
    folder = PoolFolder(str(tmp_path))
    shutil.rmtree(folder.path)  # a temp cleaner
    folder.ensure()
    assert os.path.isdir(folder.path)
    assert sweep_stale(str(tmp_path)) == []  # locked again: no sweeper takes it
    folder.remove()
    assert sweep_stale(str(tmp_path)) == [] and not os.path.exists(folder.path)


def test_a_pool_whose_folder_a_temp_cleaner_removed_goes_on_recycling(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path / "in", [f"p{i}.png" for i in range(8)])
    with fake_pool(workers=1, spares=0, max_jobs_per_worker=2) as pool:
        assert pool.recognize(paths[0]).text == "p0"
        shutil.rmtree(pool._supervisor.folder)
        # each recycle's worker opens its log there: without it, starts failed and broke
        # the pool after max_start_failures
        assert [pool.recognize(path).text for path in paths[1:]] == [f"p{i}" for i in range(1, 8)]
        exits = pool.stats().exits
    assert set(exits) == {"max_jobs"} and exits["max_jobs"] >= 3  # 3 recycles, no failed start
