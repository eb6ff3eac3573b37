"""Lose a node mid-run: a three-node Ray (a head without CPUs, two nodes of two CPUs) on
this machine, an actor on each node, and the first actor's node killed after ``--after``
results; Ray restarts that actor on the other node. Prints one JSON line of what the
driver saw. A script of its own: a process can be a driver of one Ray only, and the test
session already is one (``test_scaleout_nodes.py`` runs this; by hand:
``python tests/node_loss.py FOLDER``)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only, see conftest

import ray
from ray.cluster_utils import Cluster
from ray.exceptions import ActorUnavailableError

from ocrpool.scaleout import RayOcrPool

MB = 1024 * 1024
FAST_NODE_DEATH = {
    # Ray's defaults take ~17 s to declare a killed node dead; the test does not wait that.
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}


def _restarted(name: str, pid: int | None) -> float:
    """Seconds until Ray has the actor running again in another process: the run goes on
    after that, so the actor's new incarnation serves too."""
    started = time.monotonic()
    actor = ray.get_actor(name)
    while time.monotonic() - started < 60:
        try:
            if ray.get(actor.hello.remote()).pid != pid:  # its old process may answer a while
                return round(time.monotonic() - started, 1)
        except ActorUnavailableError:
            continue  # lost, not yet restarted
    raise AssertionError("the actor was not restarted")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path, help="images to OCR with the fake engine")
    parser.add_argument("--after", type=int, default=10, help="results before the kill")
    args = parser.parse_args()
    started = time.monotonic()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "object_store_memory": 80 * MB,
            "include_dashboard": False,
            "_system_config": FAST_NODE_DEATH,
        },
    )
    nodes = [cluster.add_node(num_cpus=2, object_store_memory=80 * MB) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    report: dict[str, object] = {"cluster_up_s": round(time.monotonic() - started, 1)}
    paths = sorted(str(path) for path in args.folder.iterdir())
    pool = RayOcrPool(1, actors=2, spares=0, engine="fake", engine_options={"delay": 0.05})
    report["nodes_before"] = sorted({actor.node for actor in pool.actors()})
    victim = pool.actors()[0]
    inputs = []
    for result in pool.imap(paths, ordered=False):
        inputs.append((result.input, result.ok, result.text))
        if len(inputs) == args.after:
            cluster.remove_node(
                next(n for n in nodes if n.node_id == victim.node), allow_graceful=False
            )
            report["restart_s"] = _restarted(victim.name, victim.pid)
    pool.close()
    stats = pool.stats()
    report.update(
        killed_node=victim.node,
        inputs=inputs,
        actors=[
            (actor.node, actor.restarts, actor.pool.completed if actor.pool else 0)
            for actor in pool.actors()
        ],
        exits=stats.exits,
        retries=stats.retries,
        total_s=round(time.monotonic() - started, 1),
    )
    print(json.dumps(report))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main()
