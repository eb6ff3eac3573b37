"""Concurrent clients with a fixed number of requests each, optionally while pool workers
are SIGKILLed at random; bounded in count and time, and only ever against loopback.

Each client is a thread that sends its requests one after another and records one outcome
per request: ``ok``, the error type of a typed error response, ``http <status>`` for a
response without one, or ``transport <exception>`` when no response came at all.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from benchmarks.harness.method import percentile
from ocrpool import OcrPool, OcrPoolError
from tests.support.served import Client, HttpReply, ServiceProcess

Sender = Callable[[int], str]
"""Sends request ``k`` of one client and returns its outcome."""


@dataclass(frozen=True)
class Drive:
    """What the clients saw."""

    requests: int
    outcomes: Counter[str]
    latencies_s: tuple[float, ...]
    elapsed_s: float

    @property
    def answered(self) -> int:
        """Requests that got exactly one response (a result or a typed error)."""
        return sum(n for outcome, n in self.outcomes.items() if not outcome.startswith("transport"))

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def p_ms(self, fraction: float) -> float:
        return percentile(self.latencies_s, fraction) * 1000.0

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies_s) * 1000.0 if self.latencies_s else float("nan")

    def count(self, prefix: str) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome.startswith(prefix))


def drive(senders: Sequence[Sender], requests_per_client: int, time_budget_s: float) -> Drive:
    """Run every sender in a thread of its own for ``requests_per_client`` requests; a
    client sends no new request after ``time_budget_s``."""
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + time_budget_s

    def client(send: Sender) -> None:
        for k in range(requests_per_client):
            if time.monotonic() > deadline:
                return
            sent = time.monotonic()
            outcome = send(k)
            took = time.monotonic() - sent
            with lock:
                outcomes[outcome] += 1
                latencies.append(took)

    threads = [threading.Thread(target=client, args=(send,)) for send in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Drive(len(latencies), outcomes, tuple(latencies), time.monotonic() - started)


def http_senders(
    server: ServiceProcess, bodies: Sequence[bytes], clients: int, path: str = "/v1/ocr"
) -> list[Sender]:
    """One keep-alive connection per client, each cycling through ``bodies``."""

    def sender(index: int) -> Sender:
        connection: Client = server.client()

        def send(k: int) -> str:
            try:
                reply = connection.request("POST", path, bodies[(index + k) % len(bodies)])
            except OSError as error:
                return f"transport {type(error).__name__}"
            return outcome_of(reply)

        return send

    return [sender(i) for i in range(clients)]


def outcome_of(reply: HttpReply) -> str:
    """``ok``, the typed error's type, or ``http <status>`` when the body names none."""
    if reply.status == 200:
        return "ok"
    try:
        kind = reply.json().get("type")
    except ValueError:
        kind = None
    return str(kind) if kind and reply.status != 500 else f"http {reply.status}"


def pool_senders(pool: OcrPool, bodies: Sequence[bytes], clients: int) -> list[Sender]:
    """The same clients calling ``OcrPool`` directly, for comparison."""

    def sender(index: int) -> Sender:
        def send(k: int) -> str:
            try:
                pool.recognize(bodies[(index + k) % len(bodies)])
            except OcrPoolError as error:
                return type(error).__name__
            return "ok"

        return send

    return [sender(i) for i in range(clients)]


class WorkerKiller:
    """SIGKILLs a random worker of ``server`` every ``interval_s`` (``None``: never), at
    most ``max_kills`` times, until stopped (a context manager)."""

    def __init__(
        self, server: ServiceProcess, interval_s: float | None, max_kills: int, seed: int
    ) -> None:
        self._server = server
        self._interval_s = interval_s
        self._max_kills = max_kills
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-killer")
        self.kills = 0

    def __enter__(self) -> WorkerKiller:
        if self._interval_s is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while self.kills < self._max_kills and not self._stop.wait(self._interval_s):
            workers = self._server.workers()
            if not workers:
                continue
            try:
                self._rng.choice(workers).kill()
            except psutil.NoSuchProcess:
                continue
            self.kills += 1
