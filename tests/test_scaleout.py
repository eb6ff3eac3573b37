"""The Ray backend end to end, on the local Ray the session shares (``conftest.py``): a
batch across two actors with the fake engine (the file's stem as its text), recycling
inside the actors, a killed actor, a killed driver, a poison input, shipped bytes, and one
real-Aspose image."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray
from fakes import FAST, make_document, make_inputs
from test_batch_admission import write_png
from test_cli_run import OCRPOOL, _exactly_once, _line_count, _wait_for, last_by_path, records

from ocrpool import (
    EngineStartError,
    InvalidInput,
    OcrResult,
    PoolClosed,
    PoolState,
    WorkerCrashed,
)
from ocrpool.batch import BatchOptions, Summary, run_batch
from ocrpool.batch.summary import Tally
from ocrpool.cli import main
from ocrpool.error_codes import ExitCode
from ocrpool.scaleout import ACTOR_LOST, ActorLost, ActorState, RayOcrPool

pytestmark = [pytest.mark.usefixtures("ray_address"), pytest.mark.slow]  # Ray: 2-5 s each

REPO = Path(__file__).resolve().parent.parent
FAKE = ["--engine", "fake", "--workers", "1", "--spares", "0"]
TWO_ACTORS = ["--backend", "ray", "--actors", "2"]


def run(*args: str) -> int:
    return main(["run", *args])


class _TwoActors:
    """A pool factory for ``run_batch``: two actors with one fake worker each; it keeps
    the pool it made."""

    def __init__(self, **settings: Any) -> None:
        self.settings = {"spares": 0, **FAST, **settings}
        self.made: RayOcrPool | None = None

    def __call__(self) -> RayOcrPool:
        self.made = RayOcrPool(1, actors=2, **self.settings)
        return self.made

    @property
    def pool(self) -> RayOcrPool:
        assert self.made is not None
        return self.made


def _batch(folder: Path, out: Path, pools: _TwoActors, progress: Any = None) -> Summary:
    return run_batch(BatchOptions(out=str(out), inputs=(str(folder),)), pools, progress=progress)


def test_a_batch_across_two_actors_records_every_input_once(
    many: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.jsonl"
    assert run(str(many), "--out", str(out), *TWO_ACTORS, *FAKE) == ExitCode.OK
    _exactly_once(out, many)
    written = records(out)
    assert all(r["pages"] == [{"text": Path(r["path"]).stem, "empty": False}] for r in written)
    assert len({r["worker_pid"] for r in written}) == 2  # one worker in each actor
    err = capsys.readouterr().err
    assert "worker exits: shutdown 2" in err

    assert run(str(many), "--out", str(out), *TWO_ACTORS, *FAKE) == ExitCode.OK
    assert len(records(out)) == 40
    assert "done before:  40 ok, 0 failed" in capsys.readouterr().err


def test_recycling_inside_the_actors_is_counted_across_them(many: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    pools = _TwoActors(spares=1, max_jobs_per_worker=3, engine_options={"delay": 0.02})
    summary = _batch(many, out, pools)
    _exactly_once(out, many)
    pool = pools.pool
    stats = pool.stats()
    per_actor = [actor.pool.exits for actor in pool.actors() if actor.pool is not None]
    assert len(per_actor) == 2 and all(exits.get("max_jobs", 0) >= 1 for exits in per_actor)
    assert stats.exits == dict(sum(map(Counter, per_actor), Counter()))
    assert summary.tally.worker_exits == stats.exits
    assert summary.tally.peak_rss_mb is not None
    assert stats.completed == 40 and stats.submitted == 40 and stats.retries == 0


class _KillAnActor:
    """Progress that kills the first actor once ``after`` records are written, then waits
    until the driver has seen it restarted (or gone), so the run goes on without it."""

    def __init__(self, pools: _TwoActors, after: int, restart: bool) -> None:
        self.pools = pools
        self.after = after
        self.restart = restart
        self.killed = False

    def update(self, tally: Tally) -> None:
        if self.killed or tally.recorded < self.after:
            return
        self.killed = True
        pool = self.pools.pool
        ray.kill(ray.get_actor(pool.actors()[0].name), no_restart=not self.restart)
        if self.restart:
            _wait_for(lambda: pool.actors()[0].restarts == 1)
            _wait_for(lambda: pool.actors()[0].state is ActorState.READY)
        else:
            _wait_for(lambda: pool.actors()[0].state is ActorState.DEAD)

    def close(self, tally: Tally) -> None:
        assert self.killed


@pytest.mark.parametrize("restart", [True, False], ids=["restarted", "gone"])
def test_an_actor_killed_mid_run_loses_no_input_and_repeats_none(
    many: Path, tmp_path: Path, restart: bool
) -> None:
    out = tmp_path / "results.jsonl"
    pools = _TwoActors(engine_options={"delay": 0.02})
    summary = _batch(many, out, pools, progress=_KillAnActor(pools, after=10, restart=restart))
    _exactly_once(out, many)
    written = records(out)
    stats = pools.pool.stats()
    assert stats.exits[ACTOR_LOST] == 1 and summary.tally.worker_exits[ACTOR_LOST] == 1
    assert stats.retries >= 1  # the calls in flight to the killed actor, sent again
    again = [r for r in written if any(a["worker_pid"] is None for a in r["attempts"])]
    assert len(again) == stats.retries
    victim = pools.pool.actors()[0]
    assert victim.restarts == (1 if restart else 0)
    assert victim.state is (ActorState.CLOSED if restart else ActorState.DEAD)


def _named_actors() -> set[tuple[str, str]]:
    """Every live ``ocrpool-`` actor on the Ray, as (namespace, name)."""
    entries = ray.util.list_named_actors(all_namespaces=True)
    return {(e["namespace"], e["name"]) for e in entries if e["name"].startswith("ocrpool-")}


def _processes(actors: set[tuple[str, str]]) -> list[psutil.Process]:
    """The processes of ``actors`` and their children (workers, resource tracker)."""
    found = []
    for namespace, name in actors:
        handle = ray.get_actor(name, namespace=namespace)  # held: Ray 2.40 drops a temporary's
        hello = ray.get(handle.hello.remote())
        actor = psutil.Process(hello.pid)
        found += [actor, *actor.children(recursive=True)]
    return found


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_sigkilled_driver_leaves_nothing_running_and_the_next_run_resumes(
    ray_address: str, many: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    command = [*OCRPOOL, "run", str(many), "--out", str(out), *TWO_ACTORS, *FAKE]
    command += ["--ray-address", ray_address, "--engine-option", "delay=0.2"]
    others = _named_actors()
    driver = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    _wait_for(lambda: _line_count(out) >= 1, timeout=60)
    actors = _named_actors() - others
    assert len(actors) == 2
    remote = _processes(actors)
    assert len(remote) >= 4  # two actors, and at least their workers
    _wait_for(lambda: _line_count(out) >= 10, timeout=60)  # 30 left: 3 s of work
    driver.kill()
    assert driver.wait(timeout=10) == -signal.SIGKILL
    assert _line_count(out) < 40
    _wait_for(lambda: not any(map(_alive, remote)))
    _wait_for(lambda: not _named_actors() & actors)

    assert subprocess.run(command, stderr=subprocess.DEVNULL, timeout=120).returncode == 0
    _exactly_once(out, many)


def test_a_poison_input_is_quarantined_in_its_actor_not_retried_by_ray(tmp_path: Path) -> None:
    paths = [str(write_png(tmp_path / f"{name}.png")) for name in ("a", "b", "crash", "c")]
    with RayOcrPool(1, actors=2, spares=0, retries=1, **FAST) as pool:
        results = {result.input: result for result in pool.imap(paths)}
    poison = results.pop(paths[2])
    assert isinstance(poison.error, WorkerCrashed)
    assert [a.outcome for a in poison.attempts] == ["WorkerCrashed", "WorkerCrashed"]
    assert all(result.ok for result in results.values())
    stats = pool.stats()
    assert stats.exits["crash"] == 2 and ACTOR_LOST not in stats.exits
    assert stats.retries == 1  # the worker's retry inside the actor; no call sent again
    assert stats.quarantined == (paths[2],)
    assert (stats.completed, stats.failed) == (3, 1)


def test_ship_bytes_sends_each_file_to_the_actors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "sizes"
    folder.mkdir()
    for name in ("a", "b", "c"):
        write_png(folder / f"{name}.png")
    out = tmp_path / "results.jsonl"
    assert run(str(folder), "--out", str(out), *TWO_ACTORS, *FAKE, "--ship-bytes") == ExitCode.OK
    for path, record in last_by_path(out).items():
        # the fake engine names bytes by their length, a path by its stem
        assert record["pages"] == [{"text": f"{os.path.getsize(path)} bytes", "empty": False}]
    assert "ok:           3" in capsys.readouterr().err


def test_shipped_bytes_in_flight_are_bounded_yet_one_larger_input_passes(tmp_path: Path) -> None:
    paths = [str(write_png(tmp_path / f"p{n}.png")) for n in range(6)]
    with RayOcrPool(1, actors=2, spares=0, ship_bytes=True, max_in_flight_mb=1e-6, **FAST) as pool:
        results = list(pool.imap(paths))
    assert [r.text for r in results] == [f"{os.path.getsize(p)} bytes" for p in paths]


def test_without_ray_the_backend_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, many: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    out = tmp_path / "results.jsonl"
    assert run(str(many), "--out", str(out), *TWO_ACTORS, *FAKE) == ExitCode.USAGE
    assert "pip install 'ocrpool[ray]'" in capsys.readouterr().err
    assert not out.exists()


def test_ray_flags_need_the_ray_backend(
    many: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "results.jsonl")
    assert run(str(many), "--out", out, "--actors", "2", "--ship-bytes", *FAKE) == ExitCode.USAGE
    assert "--actors, --ship-bytes needs --backend ray" in capsys.readouterr().err


def test_the_library_surface_is_ocrpools(tmp_path: Path) -> None:
    paths = [str(write_png(tmp_path / f"{name}.png")) for name in "abcdef"]
    with RayOcrPool(1, actors=2, spares=0, **FAST) as pool:
        assert [result.text for result in pool.map(paths)] == list("abcdef")
        assert pool.recognize(paths[1]).text == "b"
        with pytest.raises(InvalidInput):
            pool.submit(str(tmp_path / "missing.png")).result()

        async def both() -> tuple[list[str], OcrResult]:
            texts = [result.text async for result in pool.aimap(paths, ordered=True)]
            return texts, await pool.arecognize(b"four", label="in memory")

        texts, in_memory = asyncio.run(both())
        assert texts == list("abcdef")
        assert (in_memory.input, in_memory.text) == ("in memory", "4 bytes")
    assert pool.stats().state is PoolState.CLOSED
    with pytest.raises(PoolClosed):
        pool.submit(paths[0])


def test_page_jobs_of_a_document_spread_across_the_actors(tmp_path: Path) -> None:
    """A document given as a path is split by the driver, its pages on both actors; one
    given as bytes goes to one actor whole, whose pool splits it; a failed page fails alone."""
    doc = make_document(tmp_path / "doc.tif", 12)
    options = {"delay": 0.05, "fault_page": 5, "page_fault": "raise"}
    with RayOcrPool(1, actors=2, spares=0, **{**FAST, "engine_options": options}) as pool:
        result = pool.submit_result(doc).result()
        in_memory = pool.submit_result(Path(doc).read_bytes(), label="upload").result()
    expected = [f"doc p{n}" for n in range(1, 13)]
    assert result.partial and result.failed_pages == (5,)
    assert [page.text for page in result.pages] == [
        "" if n == 5 else text for n, text in enumerate(expected, 1)
    ]
    assert len({attempt.worker_pid for attempt in result.attempts}) == 2
    assert len(result.attempts) == 12
    assert in_memory.input == "upload" and in_memory.failed_pages == (5,)
    assert len(in_memory.pages) == 12


def test_shutdown_with_cancel_pending_fails_queued_and_running_jobs(tmp_path: Path) -> None:
    paths = [str(write_png(tmp_path / f"{n}.png")) for n in range(12)]
    pool = RayOcrPool(1, actors=2, spares=0, **{**FAST, "engine_options": {"delay": 60}})
    futures = [pool.submit(path) for path in paths]
    _wait_for(lambda: sum(actor.in_flight for actor in pool.actors()) > 0)
    pool.shutdown(cancel_pending=True)
    for future in futures:
        with pytest.raises(PoolClosed):
            future.result()
    assert pool.stats().failed == 12


@pytest.mark.aspose
def test_a_real_aspose_image_through_ray() -> None:
    image = REPO / "tests" / "data" / "phototest.tif"
    with RayOcrPool(1, actors=1, spares=0, engine="aspose") as pool:
        result = pool.recognize(image)
        (actor,) = pool.actors()
        assert actor.pid is not None
        actor_maps = Path(f"/proc/{actor.pid}/maps").read_text()
    assert result.text.startswith("This is a lot of 12 point text")
    assert result.evaluation_mode or "Trial" not in result.text
    assert result.rss_mb is not None and result.rss_mb > 100
    for maps in (actor_maps, Path(f"/proc/{os.getpid()}/maps").read_text()):
        assert "libcoreclr" not in maps  # neither the actor nor the driver loaded the engine
    assert "aspose.ocr" not in sys.modules


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_bug_in_the_dispatcher_fails_every_open_job_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocrpool.scaleout.dispatch import Dispatcher

    paths = make_inputs(tmp_path, [f"{i}.png" for i in range(4)])
    with RayOcrPool(1, actors=1, spares=0, **FAST) as pool:
        assert pool.recognize(paths[0]).ok

        def broken(*_: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(Dispatcher, "_dispatch", broken)
        futures, refused = [], []
        for path in paths:  # the first wakes the dispatcher, which may fail before the rest
            try:
                futures.append(pool.submit(path))
            except PoolClosed as error:
                refused.append(error)
        errors = [future.exception(timeout=30) for future in futures]
        assert futures and len(futures) + len(refused) == len(paths)
        assert all(isinstance(error, PoolClosed) for error in errors)
        assert pool.stats().state is PoolState.BROKEN
        with pytest.raises(PoolClosed, match="dispatcher failed"):
            pool.submit(paths[0])


def _kill_leftover_actors(pool: RayOcrPool) -> None:
    """Kill the pool's actors if its close could not (a dispatcher that died leaves them
    holding the session Ray's CPUs, which the later tests need)."""
    for actor in pool.actors():
        with contextlib.suppress(Exception):  # gone already: ValueError
            ray.kill(ray.get_actor(actor.name), no_restart=True)


def test_a_shipped_file_removed_before_its_dispatch_fails_alone(tmp_path: Path) -> None:
    paths = [str(write_png(tmp_path / f"p{n}.png")) for n in range(8)]
    settings = {**FAST, "engine_options": {"delay": 0.1}}
    # one call in flight to the one actor: the last input waits in the driver for ~0.7 s
    pool = RayOcrPool(1, actors=1, spares=0, ship_bytes=True, max_in_flight=1, **settings)
    try:
        futures = [pool.submit_result(path) for path in paths]
        os.unlink(paths[-1])
        results = [future.result(timeout=20) for future in futures]
        *served, removed = results
        assert isinstance(removed.error, InvalidInput), removed.error
        assert removed.input == paths[-1]
        assert [r.text for r in served] == [f"{os.path.getsize(p)} bytes" for p in paths[:-1]]
        after = pool.submit_result(paths[0]).result(timeout=20)
        assert after.ok, after.error
        assert pool.stats().state is PoolState.RUNNING
        pool.close()
        assert pool.stats().failed == 1 and pool.stats().completed == 8
    finally:
        pool.shutdown(cancel_pending=True)
        _kill_leftover_actors(pool)


def _lost_or_never_tried(results: list[OcrResult]) -> None:
    """The jobs of a pool whose every actor is gone: ``ActorLost`` for those an actor had
    (at least the two it held), the pool's ``EngineStartError`` for those none had tried,
    which ``ocrpool run`` leaves unrecorded for the next run."""
    for result in results:
        expected = ActorLost if result.attempts else EngineStartError
        assert isinstance(result.error, expected), (result.attempts, result.error)
    assert sum(isinstance(result.error, ActorLost) for result in results) >= 2
    assert any(isinstance(result.error, EngineStartError) for result in results)


def test_jobs_in_the_hands_of_the_last_actor_to_die_fail_rather_than_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The only actor is killed with two calls in flight and jobs queued, and Ray tells
    of its death before the second call's failure (it guarantees no order): the pool
    breaks, and every job fails: with ActorLost if the actor had it, else with the pool's
    EngineStartError. The late call's job used to be queued again, for no actor to take:
    it waited for ever, and so did close()."""
    from ocrpool.scaleout.dispatch import Dispatcher

    answered = Dispatcher._answered
    let_through: list[object] = []

    def death_notice_first(self: Dispatcher, message: Any) -> None:
        failed = message.call.exception() is not None
        if failed and let_through and self._life.state is not PoolState.BROKEN:
            time.sleep(0.01)
            self._inbox.put(message)  # after the actor's death is known
            return
        if failed:
            let_through.append(message)  # the first: the dispatcher greets the actor
        answered(self, message)

    monkeypatch.setattr(Dispatcher, "_answered", death_notice_first)
    # more than the actor holds (3 x its 2 workers): some are never tried
    paths = make_inputs(tmp_path, [f"{i}.png" for i in range(10)])
    pool = RayOcrPool(2, actors=1, spares=0, **{**FAST, "engine_options": {"delay": 5}})
    try:
        futures = [pool.submit_result(path) for path in paths]
        _wait_for(lambda: pool.actors()[0].in_flight >= 2)
        ray.kill(ray.get_actor(pool.actors()[0].name), no_restart=True)
        results = [future.result(timeout=60) for future in futures]
        _lost_or_never_tried(results)
        assert pool.stats().state is PoolState.BROKEN
    finally:
        pool.shutdown()


def test_an_actor_ray_never_brings_back_is_given_up_and_its_jobs_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray restarts a lost actor where it fits; when nowhere does (its node gone, the rest
    full), the restart never ends. Here the restarted actor's hello is never heard: after
    10 s for its process and start_timeout x max_start_failures the actor is given up, and,
    as it was the last one, every job fails (as above). They used to wait for ever, and
    close() with them."""
    from ocrpool.scaleout.dispatch import Dispatcher

    monkeypatch.setattr(Dispatcher, "_greeted", lambda self, message: None)
    paths = make_inputs(tmp_path, [f"{i}.png" for i in range(10)])
    settings = {**FAST, "engine_options": {"delay": 5}, "start_timeout": 4, "max_start_failures": 1}
    pool = RayOcrPool(2, actors=1, spares=0, **settings)
    try:
        futures = [pool.submit_result(path) for path in paths]
        _wait_for(lambda: pool.actors()[0].in_flight >= 2)
        ray.kill(ray.get_actor(pool.actors()[0].name), no_restart=False)  # Ray restarts it
        results = [future.result(timeout=60) for future in futures]
        _lost_or_never_tried(results)
        assert pool.stats().state is PoolState.BROKEN
        assert pool.actors()[0].state is ActorState.DEAD
    finally:
        pool.shutdown()


def test_a_frozen_actor_is_killed_for_ray_to_restart_and_its_jobs_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An actor stopped (SIGSTOP: a paused VM, a node cut off) answers neither its calls nor
    a hello: it is killed, Ray restarts it, and its jobs are dispatched again. Its jobs,
    close() and a run's Ctrl-C used to wait as long as it stayed frozen."""
    from ocrpool.scaleout import dispatch

    monkeypatch.setattr(dispatch, "SILENCE_S", 1.0)
    monkeypatch.setattr(dispatch, "FROZEN_AFTER_S", 2.0)
    paths = make_inputs(tmp_path, [f"{i}.png" for i in range(12)])
    pool = RayOcrPool(1, actors=2, spares=0, **{**FAST, "engine_options": {"delay": 0.3}})
    frozen = None
    try:
        futures = [pool.submit_result(path) for path in paths]
        _wait_for(lambda: all(actor.in_flight for actor in pool.actors()))
        frozen = pool.actors()[0].pid
        assert frozen is not None
        os.kill(frozen, signal.SIGSTOP)
        results = [future.result(timeout=120) for future in futures]
        assert [result.text for result in results] == [str(i) for i in range(12)]
        assert pool.stats().exits[ACTOR_LOST] >= 1
        _wait_for(lambda: not psutil.pid_exists(frozen) or _is_zombie(frozen))
    finally:
        if frozen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen, signal.SIGCONT)
        pool.close()


def _is_zombie(pid: int) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return True


def test_a_forked_child_is_refused_and_leaves_the_parents_ray_alone(tmp_path: Path) -> None:
    (path,) = make_inputs(tmp_path, ["a.png"])
    with RayOcrPool(1, actors=1, spares=0, **FAST) as pool:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit status
            try:
                pool.submit(path)
            except PoolClosed:
                pool.shutdown()  # must stop nothing of the parent's
                os._exit(0)
            except BaseException:
                os._exit(3)
            os._exit(1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert pool.recognize(path).text == "a"


class _RefusingHandle:
    """An actor handle whose ``recognize`` Ray refuses for inputs named ``refused``, as
    it does when its object store is full and cannot spill."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.recognize = self

    def remote(self, payload: object, label: str, options: object) -> Any:
        if "refused" in label:
            raise ray.exceptions.ObjectStoreFullError("the object store is full")
        return self._handle.recognize.remote(payload, label, options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def test_a_call_ray_refuses_costs_its_job_never_the_pool(tmp_path: Path) -> None:
    refused, fine = make_inputs(tmp_path, ["refused.png", "fine.png"])
    with RayOcrPool(1, actors=1, spares=0, **FAST) as pool:
        (slot,) = pool._dispatcher._slots
        actor, slot.handle = slot.handle, _RefusingHandle(slot.handle)
        failed = pool.submit_result(refused).result(timeout=30)
        assert pool.recognize(fine).text == "fine"
        assert pool.stats().state is PoolState.RUNNING
        slot.handle = actor  # for the pool's close, which kills it
    assert isinstance(failed.error, ActorLost) and "ObjectStoreFullError" in failed.error.cause
    assert {a.outcome for a in failed.attempts} == {"ObjectStoreFullError"}  # each retry


def test_a_fifo_given_to_ship_bytes_fails_alone_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    (fine,) = make_inputs(tmp_path, ["fine.png"])
    with RayOcrPool(1, actors=1, spares=0, ship_bytes=True, **FAST) as pool:
        result = pool.submit_result(str(fifo)).result(timeout=30)  # opening it waited
        assert isinstance(result.error, InvalidInput) and "regular" in result.error.message
        assert pool.recognize(fine).ok
