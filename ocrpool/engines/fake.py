"""A deterministic engine for tests, demos, benchmarks and integration checks.

It reads the input and returns the file's stem as its text (nothing for a name with
``blank`` in it), and renders the exports asked for as one line naming the format and
the text. Its options inject the faults a native OCR library shows in production: slow
jobs, leaked native memory and file handles, slow or failing start-up, one input
ballooning, and inputs whose names ask the worker to segfault, abort, or hang in native
code with every signal masked. A start can fail, or hang, only while a marker file exists,
so a test imitates an outage that ends (a license server back, a disk remounted) by
removing the file.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Sequence
from pathlib import PurePath

from ocrpool.engines.base import Source
from ocrpool.errors import EngineError, InvalidInput
from ocrpool.exports import Export, parse_formats
from ocrpool.processes import MB
from ocrpool.results import Page, Recognition

_START_FAILURES = ("raise", "abort", "exit", "hang")


class FakeEngine:
    """Options: ``delay`` (s per job), ``leak_mb`` (native memory leaked per job),
    ``leak_fds`` (file handles leaked per job), ``start_delay`` (s), ``fail_start``
    (``True``/``"raise"``, ``"abort"``, ``"exit"`` or ``"hang"``), ``fail_start_while`` (a
    path: ``fail_start``, by default ``"raise"``, happens only while it exists),
    ``close_delay`` (s ``close()`` takes), ``balloon_mb`` (allocated at once by an input
    whose name contains ``balloon``), ``exports`` (format names, as for the aspose
    engine)."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        leak_mb: float = 0.0,
        leak_fds: int = 0,
        start_delay: float = 0.0,
        fail_start: bool | str = False,
        fail_start_while: str | None = None,
        close_delay: float = 0.0,
        balloon_mb: float = 0.0,
        exports: Sequence[str] = (),
    ) -> None:
        if fail_start is True or (fail_start_while and not fail_start):
            fail_start = "raise"
        if fail_start and fail_start not in _START_FAILURES:
            raise ValueError(f"fail_start must be one of {_START_FAILURES}, not {fail_start!r}")
        self.delay = float(delay)
        self.leak_mb = float(leak_mb)
        self.leak_fds = int(leak_fds)
        self.start_delay = float(start_delay)
        self.fail_start = fail_start or None
        self.fail_start_while = fail_start_while
        self.close_delay = float(close_delay)
        self.balloon_mb = float(balloon_mb)
        try:
            self.exports = parse_formats(exports)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.malloc.restype = ctypes.c_void_p
        self._libc.malloc.argtypes = [ctypes.c_size_t]
        self._leaked_fds: list[int] = []

    def start(self) -> None:
        if self.start_delay:
            time.sleep(self.start_delay)
        if self.fail_start_while is not None and not os.path.exists(self.fail_start_while):
            return
        if self.fail_start == "hang":
            self._hang()
        if self.fail_start == "raise":
            raise EngineError("fake engine: start failed as asked (fail_start)")
        if self.fail_start == "abort":
            self._libc.abort()
        if self.fail_start == "exit":
            os._exit(3)

    def recognize(self, source: Source) -> Recognition:
        name, data = self._read(source)
        if "crash" in name:
            ctypes.string_at(0)
        if "abort" in name:
            self._libc.abort()
        if "hang" in name:
            self._hang()
        if "balloon" in name and self.balloon_mb:
            self._leak_memory(self.balloon_mb)
        if self.leak_mb:
            self._leak_memory(self.leak_mb)
        for _ in range(self.leak_fds):
            self._leaked_fds.append(os.open(os.devnull, os.O_RDONLY))
        if self.delay:
            time.sleep(self.delay)
        text = PurePath(name).stem if isinstance(source, str) else f"{len(data)} bytes"
        if "blank" in name:
            text = ""
        exports = tuple(
            Export(fmt, f"{fmt.value} export of {text}\n".encode()) for fmt in self.exports
        )
        return Recognition(pages=(Page(text=text),), exports=exports)

    def close(self) -> None:
        """Releases the leaked handles; leaked memory stays, as it would in a real library."""
        if self.close_delay:
            time.sleep(self.close_delay)
        for fd in self._leaked_fds:
            os.close(fd)
        self._leaked_fds.clear()

    @staticmethod
    def _read(source: Source) -> tuple[str, bytes]:
        if isinstance(source, bytes):
            if not source:
                raise InvalidInput("empty input (0 bytes)", input=None)
            return "", source
        try:
            with open(source, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise InvalidInput(f"cannot read {source}: {exc.strerror}", input=source) from None
        if not data:
            raise InvalidInput(f"empty file: {source}", input=source)
        return os.path.basename(source), data

    def _leak_memory(self, megabytes: float) -> None:
        size = int(megabytes * MB)
        address = self._libc.malloc(size)
        if not address:
            raise EngineError(f"fake engine: malloc of {megabytes} MB failed")
        ctypes.memset(address, 1, size)

    def _hang(self) -> None:
        """Block forever in native code with every signal masked: only SIGKILL ends it."""
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        while True:
            self._libc.pause()
