"""Fault injectors: what the chaos episodes and the soak do to a pool while jobs flow.

Every fault reaches the pool from outside, as production faults do: signals to worker
processes, inputs whose names make the fake engine segfault, abort, hang with signals
masked or balloon past the hard limit, and fake-engine options for starts that fail or
hang. ``Monkey`` injects the signal faults at random, at a given rate, from a seeded RNG.
"""

from __future__ import annotations

import enum
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from ocrpool import OcrPool, PoolState, WorkerState
from tests.support.served import pool_workers


class Fault(str, enum.Enum):
    """The faults injected at random and counted by kind (the lease-state kills, start
    outages and full disks are single episodes, in the tests that name them)."""

    KILL_ANY = "sigkill-any-worker"
    """SIGKILL of a worker in whatever state it is in (recorded with the kill)."""
    OOM_KILL = "sigkill-largest-worker"
    """The OOM killer's choice, imitated: SIGKILL of the worker with the most RSS."""
    STOP_BUSY = "sigstop-busy-worker"
    """SIGSTOP, and SIGCONT never comes: the job must end as a timeout."""
    KILL_PROCESS = "sigkill-any-worker-process"
    """SIGKILL of any child of the fork server, found by parentage, so also a worker the
    pool has not registered yet (between its fork and its handle). One blocked in a hang
    input with every signal masked is spared: that input's verdict is its timeout."""
    STOP_JOBLESS = "sigstop-worker-without-a-job"
    """SIGSTOP, never followed by SIGCONT, of a worker that holds no job: starting (also
    not registered yet), spare or idle. If the pool had sent it a job by the time it
    stopped, it is sent SIGCONT at once and the fault is not counted."""
    CRASH_INPUT = "segfault-input"
    ABORT_INPUT = "abort-input"
    HANG_INPUT = "hang-input-signals-masked"
    BALLOON_INPUT = "input-past-hard-limit"
    RUN_SIGKILL = "sigkill-ocrpool-run"
    RUN_SIGTERM = "sigterm-ocrpool-run"


class InputKind(str, enum.Enum):
    """What an input does to the fake engine: its name says so."""

    GOOD = "good"
    CRASH = "crash"
    ABORT = "abort"
    HANG = "hang"
    BALLOON = "balloon"


POISON = {
    Fault.CRASH_INPUT: InputKind.CRASH,
    Fault.ABORT_INPUT: InputKind.ABORT,
    Fault.HANG_INPUT: InputKind.HANG,
    Fault.BALLOON_INPUT: InputKind.BALLOON,
}
"""The input faults and the kind of input that carries each."""

SIGNAL_FAULTS = (Fault.KILL_ANY, Fault.OOM_KILL, Fault.STOP_BUSY)
"""What ``Monkey`` injects unless told otherwise."""
STOPS = (Fault.STOP_BUSY, Fault.STOP_JOBLESS)
_HOLDS_NO_JOB = (WorkerState.STARTING, WorkerState.SPARE, WorkerState.IDLE)
_STOP_WAIT_S = 1.0


def kill(pid: int, signum: signal.Signals = signal.SIGKILL) -> bool:
    """Signal ``pid``; whether it was still there."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def is_stopped(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_STOPPED)
    except psutil.Error:
        return False


def wait_stopped(pid: int, timeout: float = _STOP_WAIT_S) -> bool:
    """Whether ``pid`` is stopped within ``timeout``: a SIGSTOP lands when the process is
    next scheduled, so it may still read a message or write one after ``kill`` returned."""
    deadline = time.monotonic() + timeout
    while not is_stopped(pid):
        if time.monotonic() > deadline or not psutil.pid_exists(pid):
            return False
        time.sleep(0.001)
    return True


def blocks(pid: int, signum: signal.Signals) -> bool:
    """Whether the main thread of ``pid`` blocks ``signum`` now (``SigBlk`` in its status)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigBlk:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except OSError:
        pass
    return False


def worker_processes() -> list[int]:
    """The pids of the live workers of this process's pools, by parentage: the children
    of multiprocessing's fork server, whatever state the pool has them in."""
    return [process.pid for process in pool_workers(psutil.Process())]


def rss_mb(pid: int) -> float:
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return 0.0


@dataclass(frozen=True)
class Kill:
    """One injected signal, as the monkey saw the pool at that moment."""

    at: float
    """``time.monotonic()`` when the signal was sent."""
    fault: Fault
    pid: int
    state: WorkerState
    spare_warm: bool
    """Whether another worker was warm and waiting (SPARE) to take the slot."""


class Monkey:
    """Injects ``faults`` into ``pool``'s workers at random while jobs flow.

    Gaps between faults are exponential with mean ``1 / rate_per_s``. A worker it
    SIGSTOPs must be ended by the pool within ``job_timeout`` plus the grace; one still
    stopped ``stop_margin_s`` after that is counted in ``stuck`` and SIGKILLed, so a run
    that found the bug can go on and report it. A driver that must see a number of faults
    whatever the machine's speed waits for them with ``wait_injected``.
    """

    def __init__(
        self,
        pool: OcrPool,
        rng: random.Random,
        rate_per_s: float,
        faults: Sequence[Fault] = SIGNAL_FAULTS,
        *,
        stop_margin_s: float = 5.0,
    ) -> None:
        self.pool = pool
        self.rng = rng
        self.rate_per_s = rate_per_s
        self.faults = tuple(faults)
        config = pool.config
        self._stop_limit = (config.job_timeout or 0.0) + config.kill_grace + stop_margin_s
        self.injected: Counter[Fault] = Counter()
        self.kills: list[Kill] = []
        self.stopped: dict[int, float] = {}
        """SIGSTOPped pids and when the pool must have ended them."""
        self.stuck: list[int] = []
        self.pool_states: Counter[PoolState] = Counter()
        """The pool's state each time the monkey looked at it."""
        self._done = threading.Event()
        self._counted = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="chaos-monkey", daemon=True)

    def __enter__(self) -> Monkey:
        if self.rate_per_s > 0 and self.faults:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        self.release_stopped(force=True)

    def _run(self) -> None:
        while not self._done.wait(self.rng.expovariate(self.rate_per_s)):
            self.release_stopped(force=False)
            self.inject(self.rng.choice(self.faults))

    def inject(self, fault: Fault) -> None:
        stats = self.pool.stats()
        self.pool_states[stats.state] += 1
        if fault in (Fault.KILL_PROCESS, Fault.STOP_JOBLESS):
            self._inject_by_parentage(fault, {w.pid: w.state for w in stats.workers})
            return
        workers = [w for w in stats.workers if w.pid not in self.stopped]
        if fault is Fault.STOP_BUSY:
            candidates = [w for w in workers if w.state is WorkerState.BUSY]
        elif fault is Fault.OOM_KILL:
            candidates = sorted(workers, key=lambda w: rss_mb(w.pid))[-1:]
        else:
            candidates = [w for w in workers if w.state is not WorkerState.KILLING]
        if not candidates:
            return
        target = self.rng.choice(candidates)
        spare = any(w.state is WorkerState.SPARE and w.pid != target.pid for w in workers)
        signum = signal.SIGSTOP if fault is Fault.STOP_BUSY else signal.SIGKILL
        at = time.monotonic()
        if not kill(target.pid, signum):
            return
        if fault is Fault.STOP_BUSY:
            self.stopped[target.pid] = at + self._stop_limit
        self._count(Kill(at, fault, target.pid, target.state, spare))

    def _inject_by_parentage(self, fault: Fault, states: dict[int, WorkerState]) -> None:
        """A fault for a worker picked among the fork server's children; one the pool has
        not registered yet is STARTING."""
        if fault is Fault.KILL_PROCESS:
            candidates = [p for p in worker_processes() if not blocks(p, signal.SIGTERM)]
        else:
            candidates = [p for p in worker_processes() if p not in self.stopped]
            candidates = [
                p for p in candidates if states.get(p, WorkerState.STARTING) in _HOLDS_NO_JOB
            ]
        if not candidates:
            return
        pid = self.rng.choice(candidates)
        state = states.get(pid, WorkerState.STARTING)
        spare = any(s is WorkerState.SPARE and p != pid for p, s in states.items())
        at = time.monotonic()
        if fault is Fault.KILL_PROCESS:
            if not kill(pid):
                return
        elif not self._stop_jobless(pid):
            return
        self._count(Kill(at, fault, pid, state, spare))

    def _count(self, kill: Kill) -> None:
        with self._counted:
            self.injected[kill.fault] += 1
            self.kills.append(kill)
            self._counted.notify_all()

    def wait_injected(self, fault: Fault | None, count: int, timeout_s: float = 60.0) -> bool:
        """Wait until ``count`` faults of kind ``fault`` (``None``: of any kind) have been
        injected: an episode paces its inputs by them, so a fast machine cannot end it
        before they land."""

        def injected() -> int:
            return self.injected.total() if fault is None else self.injected[fault]

        with self._counted:
            return self._counted.wait_for(lambda: injected() >= count, timeout_s)

    def _stop_jobless(self, pid: int) -> bool:
        """SIGSTOP ``pid``; once it is stopped, SIGCONT it again if the pool gave it a job
        meanwhile (a worker stopped before it holds a job can never acknowledge one)."""
        if not kill(pid, signal.SIGSTOP):
            return False
        if not wait_stopped(pid):
            kill(pid, signal.SIGCONT)
            return False
        states = {w.pid: w.state for w in self.pool.stats().workers}
        if states.get(pid, WorkerState.STARTING) not in _HOLDS_NO_JOB:
            kill(pid, signal.SIGCONT)
            return False
        self.stopped[pid] = float("inf")  # nothing obliges the pool to end a stopped spare
        return True

    def release_stopped(self, *, force: bool) -> None:
        """Forget stopped workers the pool ended; SIGKILL those it left past their limit."""
        now = time.monotonic()
        for pid, limit in list(self.stopped.items()):
            if not is_stopped(pid):
                del self.stopped[pid]
            elif force or now >= limit:
                if not force:
                    self.stuck.append(pid)
                kill(pid)
                del self.stopped[pid]
