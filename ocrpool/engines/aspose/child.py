"""Run a function in a throwaway spawned process, so a .NET abort is a report, not a crash.

``doctor`` and ``models`` load Aspose only through ``run_in_child``: the calling process
never holds the runtime, and a SIGABRT of the runtime comes back as ``WorkerCrashed``
with the signal and the tail of what the child printed.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from pebble import ProcessExpired, concurrent

from ocrpool.errors import JobTimeout, WorkerCrashed
from ocrpool.processes import describe_exit, read_tail, redirect_stdio, signal_name

T = TypeVar("T")


def run_in_child(function: Callable[..., T], *args: Any, timeout: float) -> T:
    """``function(*args)`` in a fresh spawned process; its result or its exception.

    ``function`` must be importable (module level). The child's stdout and stderr go to
    a temporary file, so native chatter cannot garble the caller's output; when the
    child dies (``WorkerCrashed``: a SIGABRT of the .NET runtime, say) or runs past
    ``timeout`` (``JobTimeout``), the error carries that file's tail.
    """
    context = multiprocessing.get_context("spawn")
    with tempfile.NamedTemporaryFile(prefix="ocrpool-child-", suffix=".log") as log:
        # pebble 5 reads ``context`` (its type hints say ``mp_context``, which it ignores,
        # silently forking instead).
        call = concurrent.process(timeout=timeout, context=context)(  # type: ignore[call-overload]
            _call_redirected
        )
        try:
            result: T = call(log.name, function, args).result()
        except ProcessExpired as exc:
            raise WorkerCrashed(
                f"the child process died ({describe_exit(exc.exitcode)})",
                exitcode=exc.exitcode,
                signal=signal_name(exc.exitcode),
                stderr_tail=read_tail(log.name),
            ) from None
        except FutureTimeout:
            raise JobTimeout(
                f"the child process did not finish in {timeout:g} s",
                timeout=timeout,
                stderr_tail=read_tail(log.name),
            ) from None
    return result


def _call_redirected(log_path: str, function: Callable[..., T], args: tuple[Any, ...]) -> T:
    redirect_stdio(log_path)
    return function(*args)
