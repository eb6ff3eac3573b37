"""Losing a node of a multi-node Ray: ``node_loss.py`` in a process of its own (a process
drives one Ray only, and this session's is single-node)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_a_lost_node_costs_its_calls_once_and_its_actor_restarts_elsewhere(many: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "node_loss.py"), str(many), "--after", "10"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    inputs = report["inputs"]
    assert sorted(path for path, _, _ in inputs) == sorted(str(p) for p in many.iterdir())
    assert all(ok and text == Path(path).stem for path, ok, text in inputs)
    assert len(report["nodes_before"]) == 2  # one actor per node
    assert report["exits"]["actor_lost"] == 1
    (node, restarts, served), _ = report["actors"]
    assert restarts == 1 and node != report["killed_node"] and served > 0
