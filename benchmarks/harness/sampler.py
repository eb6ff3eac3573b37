"""RSS and CPU time of a whole process tree, read with psutil, and stopping that tree.

A tree's CPU time counts every process that ever lived in it: a live process reports its
own user+system time plus that of the children it has reaped (``children_user`` and
``children_system``), and a reaped process is counted by its parent. So the sum over the
live processes is the total, including workers that exited long ago.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

MB = 1024 * 1024


@dataclass(frozen=True)
class TreeSample:
    """One reading of a process tree: total RSS (MB), total CPU seconds, live processes,
    and the RSS of the Ray processes among them (0 without Ray)."""

    at: float
    rss_mb: float
    cpu_s: float
    pids: frozenset[int]
    ray_rss_mb: float = 0.0


def _members(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_seconds(times: psutil._common.pcputimes) -> float:
    return float(times.user + times.system + times.children_user + times.children_system)


class ProcessTree:
    """A process and all its descendants, found afresh at each reading.

    It remembers every member it has seen, so ``kill`` also reaches workers that outlived
    their parent (psutil checks each one's start time, so a reused pid is never hit).
    """

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self._seen: dict[int, psutil.Process] = {}

    def sample(self) -> TreeSample:
        """Read every member once. An exited but unreaped worker (a zombie) still
        reports its CPU time, and no parent has counted it yet, so it is included."""
        rss = ray_rss = 0
        cpu = 0.0
        pids = set()
        for process in _members(self._root):
            self._seen.setdefault(process.pid, process)
            try:
                cpu += _cpu_seconds(process.cpu_times())
            except psutil.NoSuchProcess:
                continue  # reaped since the listing: its parent counts its CPU now
            pids.add(process.pid)
            try:
                memory = process.memory_info().rss
                ray_rss += memory if _is_ray(process) else 0
            except psutil.NoSuchProcess:
                continue  # a zombie (exited, not yet reaped) holds no memory
            rss += memory
        return TreeSample(time.monotonic(), rss / MB, cpu, frozenset(pids), ray_rss / MB)

    def kill(self) -> None:
        """SIGKILL every member, the root first so it cannot start replacements, then reap."""
        members = {process.pid: process for process in _members(self._root)}
        members.update(
            (pid, process) for pid, process in self._seen.items() if process.is_running()
        )
        for process in members.values():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(list(members.values()), timeout=10)


def _is_ray(process: psutil.Process) -> bool:
    """Ray's own processes: its servers and monitors (run from Ray's package folder) and
    its workers and actors (titled ``ray::...``); not the OCR workers an actor spawns."""
    command = process.cmdline()
    return bool(command) and (
        command[0].startswith("ray::") or any("/site-packages/ray/" in part for part in command[:3])
    )


def tree_cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds used so far by the tree rooted at ``pid`` (default: this process)."""
    return ProcessTree(pid if pid is not None else os.getpid()).sample().cpu_s


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (every core, not idle)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))
