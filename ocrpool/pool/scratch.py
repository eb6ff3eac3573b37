"""The pool's own folder: its workers' logs and the bytes of its split documents.

One folder per pool, ``ocrpool-<pid>-XXXXXXXX`` in the system's temp dir, removed when
the pool's supervisor ends. A pool killed with SIGKILL cannot remove it, so each new
pool sweeps the folders of dead ones: a folder holds a ``.lock`` file that its pool keeps
locked (``flock``) for its whole life, and the kernel drops that lock when the last
process holding it ends, however it ends. A folder whose lock can be taken is stale; a
folder without a ``.lock`` (another tool's, an older ocrpool's) is never touched. The
lock file is locked under another name and renamed to ``.lock``, so no sweeper sees it
unlocked.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile

log = logging.getLogger("ocrpool")

PREFIX = "ocrpool-"
LOCK = ".lock"


class PoolFolder:
    """A new pool's folder under ``root`` (default: the system temp dir), after sweeping
    the stale folders of killed pools there."""

    def __init__(self, root: str | None = None) -> None:
        root = root or tempfile.gettempdir()
        sweep_stale(root)
        self.path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root)
        try:
            self._lock = _locked(self.path)
        except OSError:  # no descriptor for the lock: the folder holds at most its file
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.path, LOCK + ".new"))
            with contextlib.suppress(OSError):
                os.rmdir(self.path)
            raise

    def ensure(self) -> None:
        """Make the folder and its lock again if something removed them (a temp cleaner):
        a worker that cannot open its log there cannot start, and starts that fail break
        the pool; a folder without its lock would outlive a killed pool."""
        if os.path.exists(os.path.join(self.path, LOCK)):
            return
        try:
            os.makedirs(self.path, 0o700, exist_ok=True)
            lock, self._lock = self._lock, _locked(self.path)
        except OSError as error:
            log.warning("could not make the pool's folder %s again: %s", self.path, error)
            return
        os.close(lock)
        log.warning("made the pool's folder %s again: something removed it", self.path)

    def remove(self) -> None:
        """Let go of the folder's lock, then remove it and everything in it: the lock's
        descriptor is one ``rmtree`` may need (a process out of descriptors), and a folder
        left unlocked is a stale one the next pool sweeps."""
        with contextlib.suppress(OSError):
            os.close(self._lock)
        shutil.rmtree(self.path, ignore_errors=True)


def _locked(path: str) -> int:
    """A descriptor holding the lock of the folder ``path``, its ``.lock`` in place."""
    locking = os.path.join(path, LOCK + ".new")
    lock = os.open(locking, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.rename(locking, os.path.join(path, LOCK))
    return lock


def sweep_stale(root: str) -> list[str]:
    """Remove the folders under ``root`` of this user's pools that no live process holds;
    the paths removed."""
    removed: list[str] = []
    try:
        names = [name for name in os.listdir(root) if name.startswith(PREFIX)]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(root, name)
        if _stale(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            log.info("removed %s, left by a pool that was killed", path)
    return removed


def _stale(path: str) -> bool:
    """Whether ``path`` is a pool folder of this user whose lock nobody holds."""
    try:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return False
        lock = os.open(os.path.join(path, LOCK), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(lock)
    return True
