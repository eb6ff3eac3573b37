"""Run a ``Service`` on uvicorn until SIGTERM or Ctrl-C, then drain it and return.

On the first signal uvicorn stops accepting connections and waits for the open ones while
the pool drains (``--drain-timeout``); requests still waiting for a job then get its
result, or ``PoolClosed`` at the deadline. A second signal ends the drain at once. The
lifespan's end waits for every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import signal
import socket
import time
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ocrpool.service.app import Service
from ocrpool.service.errors import CannotListen, RequestTimeout
from ocrpool.service.lifecycle import PoolLifecycle
from ocrpool.service.settings import ServiceSettings

log = logging.getLogger("ocrpool")

ANSWER_GRACE_S = 10.0
"""After the drain deadline: time for the last requests to get their ``PoolClosed``
(running jobs are stopped with SIGTERM, then SIGKILL after ``kill_grace``)."""


def _headers_in_time(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, but a connection whose request headers are not all in
    ``timeout_s`` after it opened (or after its last answer) gets 408 and is closed.
    uvicorn has no such deadline: connections that send half a request line and then
    nothing (slowloris) stayed open for ever, 800 of them in an attack. Once the headers
    are in, the body has ``--body-timeout`` (the app's ``RequestTimeout``)."""
    error = RequestTimeout(
        f"the request headers did not all arrive within {timeout_s:g} s (--body-timeout)",
        timeout_s=timeout_s,
    )
    body = json.dumps(error.to_dict()).encode()
    reply = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
        + body
    )

    class HeadersInTime(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_headers()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(timeout_s, self._headers_due)

        def _headers_due(self) -> None:
            waiting = self.cycle is None or self.cycle.response_complete
            if waiting and not self.transport.is_closing():
                if self.conn.trailing_data[0]:  # part of a request came: say why
                    self.transport.write(reply)
                self.transport.close()

    return HeadersInTime


class _EarlyStops:
    """SIGTERM and SIGINT's handler outside uvicorn's: a stop signal that comes once the
    port is bound (a client may know the URL) but before uvicorn handles signals is kept
    for it; after uvicorn has stopped, the signals it raises again are ignored."""

    def __init__(self) -> None:
        self._kept: list[int] = []
        self._handed_over = False

    def __call__(self, sig: int, frame: FrameType | None) -> None:
        if not self._handed_over:
            self._kept.append(sig)

    def hand_over(self) -> list[int]:
        self._handed_over = True
        return self._kept


_ACCEPT_REFUSED = "socket.accept() out of system resource"


class AcceptFailureLog:
    """The event loop's exception handler while the service runs. Out of descriptors,
    asyncio (3.11) reports each refused ``accept`` once per slot of the listen backlog,
    with a traceback: hundreds of MB of log a minute, enough to fill a disk. This says it
    once every ``every_s``, and drops the retries asyncio scheduled for a listener that
    has closed since (a ``ValueError`` each at exit). Anything else goes to the handler
    that was set before, or to asyncio's own."""

    def __init__(
        self,
        previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._previous = previous
        self._every_s = every_s
        self._clock = clock
        self._next_at = float("-inf")
        self.refused = 0
        """Refused accepts since the last one said."""

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == _ACCEPT_REFUSED:
            self.refused += 1
            now = self._clock()
            if now >= self._next_at:
                self._next_at = now + self._every_s
                log.warning(
                    "cannot accept connections: %s (%d refused; this process's limit on "
                    "open files, ulimit -n); new connections wait in the kernel's queue",
                    context.get("exception"),
                    self.refused,
                )
                self.refused = 0
            return
        handle = context.get("handle")
        callback = getattr(handle, "_callback", None)
        if isinstance(context.get("exception"), ValueError) and (
            getattr(callback, "__name__", "") == "_start_serving"
        ):
            return  # a retry of accept for a listener closed since
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)


class _DrainingServer(uvicorn.Server):
    """A uvicorn server whose first stop signal also starts draining the pool at once, and
    whose second stops it now: the jobs left fail with ``PoolClosed``, the running ones are
    killed. (uvicorn's own second Ctrl-C skips the lifespan's end, where the workers are
    stopped, and waits on a pool still finishing a hung job.)"""

    def __init__(
        self, config: uvicorn.Config, lifecycle: PoolLifecycle, early: _EarlyStops
    ) -> None:
        super().__init__(config)
        self._lifecycle = lifecycle
        self._early = early
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(AcceptFailureLog(self._loop.get_exception_handler()))
        watcher = asyncio.ensure_future(self._stop_when_fatal())
        try:
            await super().serve(sockets)
        finally:
            watcher.cancel()

    async def _stop_when_fatal(self) -> None:
        await self._lifecycle.until_fatal()
        self._lifecycle.begin_drain()  # now: uvicorn ends the lifespan only after requests
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            for sig in self._early.hand_over():
                self.handle_exit(sig, None)
            yield

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        assert loop is not None  # set before uvicorn handles signals
        if self.should_exit:
            loop.call_soon_threadsafe(self._lifecycle.stop_now)
            return
        loop.call_soon_threadsafe(self._lifecycle.begin_drain)
        super().handle_exit(sig, frame)


def serve(settings: ServiceSettings, on_listening: Callable[[str], None] | None = None) -> None:
    """Serve until stopped; returns once every worker has exited. ``CannotListen`` if the
    address cannot be had, before the pool starts; else ``on_listening`` gets the URL, with
    the port bound (the one the system chose for port 0). ``EngineConfigError``, once
    stopped, if the engine refused its options at start-up."""
    listener = _listen(settings.host, settings.port)
    early = _EarlyStops()
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, early)
    if on_listening is not None:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        on_listening(f"http://{host}:{listener.getsockname()[1]}")
    if settings.token is None and not _is_loopback(settings.host):
        log.warning(
            "listening on %s without a token: anyone who can reach it can use it", settings.host
        )
    if settings.access_log:  # uvicorn's access lines are INFO: shown without -v too
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    service = Service(settings)
    config = uvicorn.Config(
        service.asgi(),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=settings.access_log,
        server_header=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s + ANSWER_GRACE_S),
        http=_headers_in_time(settings.body_timeout_s),
    )
    _DrainingServer(config, service.lifecycle, early).run(sockets=[listener])
    if service.lifecycle.fatal is not None:
        raise service.lifecycle.fatal


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn, which binds it only after
    the pool began to start and then exits with its own code (3)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        return socket.create_server(address, family=family)
    except OSError as error:
        raise CannotListen(
            f"cannot listen on {host} port {port}: {error.strerror or error}", host=host, port=port
        ) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
