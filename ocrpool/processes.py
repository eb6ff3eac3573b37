"""Facts about child processes shared by the pool and the engine tools.

How a process ended (in words), where its output goes, and the tail of that output:
the pool's workers and ``run_in_child`` both redirect native chatter to a file and
quote its end when the process dies.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import IO

TAIL_BYTES = 6000
"""How much of a dead process's output an error quotes."""
MB = 1024 * 1024


def signal_name(exitcode: int | None) -> str | None:
    """``"SIGABRT"`` for a process killed by SIGABRT (exit code -6), else ``None``."""
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def describe_exit(exitcode: int | None) -> str:
    """``killed by SIGKILL``, ``exit code 3`` or ``exit status unknown``."""
    name = signal_name(exitcode)
    if name is not None:
        return f"killed by {name}"
    return "exit status unknown" if exitcode is None else f"exit code {exitcode}"


CWD_ADVICE = "run from a folder that exists and this user may enter"


def cwd_problem() -> str | None:
    """Why no child process can start in this process's current folder, or ``None``:
    multiprocessing makes every child enter it (``spawn.prepare``), so one removed, or
    one this user may not enter (``sudo -u`` from a home folder), fails every start; and
    a relative path then means nothing."""
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        return "the current folder was removed"
    if not os.access(cwd, os.X_OK):
        return f"this user may not enter the current folder {cwd}"
    return None


def redirect_stdio(path: str) -> IO[str]:
    """Send fds 1 and 2 and Python's streams to ``path``.

    Both levels: native code writes to the fds, and a spawned child may have inherited
    Python-level stream objects that write elsewhere (pytest's capture, say). A ``path``
    that cannot be opened (its folder removed under us) gives ``os.devnull``: the
    process runs on without its log.
    """
    try:
        log = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError:
        log = open(os.devnull, "a", encoding="utf-8")  # noqa: SIM115
    for fd in (1, 2):
        os.dup2(log.fileno(), fd)
    sys.stdout = sys.stderr = log
    return log


def read_tail(path: str, size: int = TAIL_BYTES) -> str:
    """The last ``size`` bytes of ``path`` as text; empty if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - size))
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
