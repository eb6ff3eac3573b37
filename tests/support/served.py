"""``ocrpool serve`` in a child process on a free loopback port, and a client to talk to it.

Shared by the service tests and the service benchmark (``benchmarks/service.py``): both
start the real server as a user would (``python -m ocrpool serve``) and speak HTTP to it,
one keep-alive connection per simulated program. ``pool_workers`` and ``wait_until`` serve
the reliability suite too.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

HOST = "127.0.0.1"
_POLL_S = 0.05
_MB = 1024 * 1024


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive HTTP connection to the service (reopened after an error)."""

    def __init__(self, port: int, token: str | None = None, timeout_s: float = 120.0) -> None:
        self._port = port
        self._token = token
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpReply:
        all_headers = dict(headers or {})
        if self._token:
            all_headers.setdefault("Authorization", f"Bearer {self._token}")
        if self._conn is None:
            self._conn = http.client.HTTPConnection(HOST, self._port, timeout=self._timeout_s)
        try:
            self._conn.request(method, path, body=body, headers=all_headers)
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return HttpReply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def pool_workers(parent: psutil.Process) -> list[psutil.Process]:
    """The live pool workers below ``parent``: spawned children, or the children of
    multiprocessing's fork server (not the fork server or the resource tracker, which
    live as long as the interpreter)."""
    workers = []
    for child in parent.children():
        try:
            command = " ".join(child.cmdline())
            if "forkserver" in command:
                candidates = child.children()
            elif "spawn_main" in command:
                candidates = [child]
            else:
                continue
            workers += [c for c in candidates if c.status() != psutil.STATUS_ZOMBIE]
        except psutil.Error:
            continue
    return workers


def free_port() -> int:
    """A loopback port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` naming ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        time.sleep(_POLL_S)


class ServiceProcess:
    """``python -m ocrpool serve ARGS --port <free>`` with its output in ``log``."""

    def __init__(
        self,
        args: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        self.port = free_port()
        self.log = log
        self.token = token
        """What ``client()`` sends as its bearer token unless told otherwise."""
        command = [sys.executable, "-m", "ocrpool", "serve", "--port", str(self.port), *args]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        self.pid = self.process.pid

    def start(self, *, ready: bool = True, timeout_s: float = 90.0) -> ServiceProcess:
        """Wait until it answers ``/healthz`` (and, with ``ready``, ``/readyz`` with 200)."""
        wait_until(lambda: self._answers("/healthz", ready=False), timeout_s, "/healthz")
        if ready:
            wait_until(lambda: self._answers("/readyz", ready=True), timeout_s, "/readyz")
        return self

    def client(self, token: str | None = None) -> Client:
        """A client sending ``token`` (default: ``self.token``; ``""``: none)."""
        return Client(self.port, token if token is not None else self.token)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpReply:
        """One request on a connection of its own."""
        client = self.client()
        try:
            return client.request(method, path, body, headers)
        finally:
            client.close()

    def workers(self) -> list[psutil.Process]:
        return pool_workers(psutil.Process(self.pid))

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples named ``name`` (e.g. ``ocrpool_jobs_total``) on /metrics
        that carry ``labels``."""
        text = self.request("GET", "/metrics").body.decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def rss_mb(self) -> float:
        """The server process's own RSS (its workers not included)."""
        return float(psutil.Process(self.pid).memory_info().rss) / _MB

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, then wait for the exit; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            server = psutil.Process(self.pid)
            tree = [server, *server.children(recursive=True)]  # before they are orphaned
            try:
                self.stop(timeout_s=30.0)
            except subprocess.TimeoutExpired:
                for process in tree:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        process.kill()
                psutil.wait_procs(tree, timeout=10)
                self.process.wait()

    def _answers(self, path: str, ready: bool) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"ocrpool serve exited with {self.process.returncode}:\n{self.log_tail()}"
            )
        try:
            reply = self.request("GET", path)
        except OSError:
            return False
        return reply.status == 200 or not ready
