"""The lease book, driven by a clock the test owns: unit tests in milliseconds, and a
state machine that runs it through any interleaving of send, ack, outcome, decline,
worker death, timeout, cancel and close, checking that no job is lost or finished twice."""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import Future

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ocrpool.engines.base import PageSpan
from ocrpool.errors import JobTimeout, PoolClosed, WorkerCrashed
from ocrpool.pool.leases import Lease, LeaseBook, LeaseState
from ocrpool.pool.lifecycle import PoolLife
from ocrpool.results import Attempt, OcrResult, Page, Recognition
from ocrpool.stats import PoolState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _resolve(book: LeaseBook[str]) -> None:
    for resolution in book.resolutions():
        resolution()


def _sent(book: LeaseBook[str], holder: str) -> Lease:
    lease = book.take()
    assert lease is not None
    book.assign(lease, holder)
    return lease


def test_a_job_is_timed_from_its_ack_or_from_when_it_became_first_in_hand() -> None:
    clock = Clock()
    book: LeaseBook[str] = LeaseBook(retries=1, clock=clock)
    first, second = book.add("a", "a", True), book.add("b", "b", True)
    _sent(book, "w"), _sent(book, "w")  # the second one is prefetched
    assert book.deadline("w", 5.0) == 105.0  # never acknowledged: timed from now
    clock.now = 101.0
    book.acked("w", first.job_id)
    assert book.deadline("w", 5.0) == 106.0
    assert book.acked("w", second.job_id) is None  # a worker starts its jobs in order
    clock.now = 103.0
    assert book.settle("w", first.job_id) is first
    assert book.head("w") is second and book.deadline("w", 5.0) == 108.0
    assert book.deadline("w", None) is None and book.deadline("idle", 5.0) is None


def test_a_lost_started_job_is_retried_then_quarantined_and_counts_its_attempts() -> None:
    book: LeaseBook[str] = LeaseBook(retries=1, clock=Clock())
    lease = book.add("x.png", "x.png", raises=True)
    for worker_pid, requeued in ((11, True), (12, False)):
        _sent(book, f"w{worker_pid}")
        book.acked(f"w{worker_pid}", lease.job_id)
        (lost,) = book.release(f"w{worker_pid}")
        error = WorkerCrashed("x.png: died", exitcode=-11)
        assert book.charge(lost, Attempt.of(worker_pid, error, 1.0), error, retry=True) is requeued
    _resolve(book)
    with pytest.raises(WorkerCrashed):
        lease.future.result(timeout=0)
    assert (book.retried, book.failed, list(book.quarantined)) == (1, 1, ["x.png"])
    assert [a.worker_pid for a in lease.attempts] == [11, 12]


def test_a_document_its_worker_counted_becomes_its_page_jobs_first_in_line() -> None:
    book: LeaseBook[str] = LeaseBook(retries=1, clock=Clock())
    document, other = book.add("doc.tif", "doc.tif", False), book.add("b", "b", True)
    _sent(book, "w")
    book.acked("w", document.job_id)
    assert book.settle("w", document.job_id) is document
    told: list[list[Future[OcrResult]]] = []
    spans = [(PageSpan("/d/doc.tif", at, 2), f"doc.tif [{at}]") for at in (0, 2, 4)]

    def found(_: tuple[PageSpan, ...], futures: list[Future[OcrResult]]) -> None:
        assert not document.future.done()  # the pages are known before the job ends
        told.append(futures)

    children = book.expand(document, spans, found, Attempt.of(7, None, 0.01))
    assert [book.take() for _ in range(4)] == [*children, other]
    assert [child.label for child in children] == ["doc.tif [0]", "doc.tif [2]", "doc.tif [4]"]
    assert all(not child.raises and child.options is document.options for child in children)
    _resolve(book)
    assert told == [[child.future for child in children]]
    counted = document.future.result(timeout=0)
    assert counted.pages == () and counted.error is None
    assert [attempt.worker_pid for attempt in counted.attempts] == [7]
    # the document is counted as its page jobs: 3 of them and the other job
    assert (book.submitted, book.completed, book.failed, book.open) == (4, 0, 0, 4)


def test_a_job_never_started_goes_back_first_in_line_unblamed() -> None:
    book: LeaseBook[str] = LeaseBook(retries=0, clock=Clock())
    first, _ = book.add("a", "a", True), book.add("b", "b", True)
    _sent(book, "w")
    (lost,) = book.release("w")
    assert lost.state is LeaseState.SENT
    book.put_back(lost)
    assert book.take() is first and first.attempts == [] and first.retries_used == 0


def test_a_kill_is_requested_once_and_only_for_a_held_job() -> None:
    book: LeaseBook[str] = LeaseBook(retries=0, clock=Clock())
    held, queued = book.add("a", "a", True), book.add("b", "b", True)
    _sent(book, "w")
    assert book.request_kill(queued.future) is None
    assert book.request_kill(held.future) == ("w", held)
    assert book.to_be_stopped(held)
    assert book.request_kill(held.future) is None


def test_a_remote_result_keeps_the_books_attempts_first_and_its_elapsed_time() -> None:
    clock = Clock()
    book: LeaseBook[str] = LeaseBook(retries=2, clock=clock)
    lease = book.add("a", "a", raises=False)
    _sent(book, "actor")
    book.acked("actor", lease.job_id)
    (lost,) = book.release("actor")
    book.charge(lost, Attempt(None, "ActorDiedError", 1.0), PoolClosed("x"), retry=True)
    book.assign(book.take() or lease, "actor", started=True)
    clock.now += 7.0
    remote = OcrResult(input="a", pages=(Page("text"),), attempts=(Attempt(5, "ok", 0.5),))
    book.finish_with(lease, remote)
    book.finish_with(lease, remote)  # a second answer (Ray retried a lost call) is dropped
    _resolve(book)
    result = lease.future.result(timeout=0)
    assert [a.outcome for a in result.attempts] == ["ActorDiedError", "ok"]
    assert (result.elapsed_s, book.completed) == (7.0, 1)


def test_failing_all_ends_queued_taken_and_held_jobs_at_once() -> None:
    book: LeaseBook[str] = LeaseBook(retries=0, clock=Clock())
    leases = [book.add(str(i), str(i), raises=True) for i in range(4)]
    _sent(book, "w")
    book.take()  # on its way to a holder
    book.fail_all(PoolClosed("the pool's thread failed"))
    _resolve(book)
    assert all(isinstance(lease.future.exception(timeout=0), PoolClosed) for lease in leases)
    assert (book.open, book.queued, book.holders()) == (0, 0, [])


def test_the_pools_life_cycle_is_enforced_and_broken_keeps_its_fault() -> None:
    life = PoolLife()
    life.become(PoolState.RUNNING)
    with pytest.raises(RuntimeError, match="running -> starting"):
        life.become(PoolState.STARTING)
    assert life.breaks(PoolClosed("boom"))
    assert life.state is PoolState.BROKEN and not life.serving and not life.accepting
    assert not life.breaks(PoolClosed("again"))
    refused = life.refusal()
    assert isinstance(refused, PoolClosed) and refused is not life.fault
    closed = PoolLife(PoolState.CLOSING)
    closed.become(PoolState.CLOSED)
    assert isinstance(closed.refusal(), PoolClosed) and not closed.breaks(PoolClosed("x"))


HOLDERS = ("w1", "w2", "w3")


class LeaseMachine(RuleBasedStateMachine):
    """Any interleaving of what a pool does with its leases; nothing lost, nothing twice."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.book: LeaseBook[str] = LeaseBook(retries=2, clock=self.clock)
        self.leases: list[Lease] = []
        self.results: Counter[int] = Counter()
        """How many times each job's future was resolved (or cancelled)."""
        self.closed = False
        self.expanded = 0
        """Jobs that became their page jobs (``LeaseBook.expand``)."""
        self.found: dict[int, list[Future[OcrResult]]] = {}
        self.errors = _Errors()
        logging.getLogger("ocrpool").addHandler(self.errors)

    def _resolve(self) -> None:
        for resolution in self.book.resolutions():
            resolution()

    @precondition(lambda self: not self.closed)
    @rule()
    def submit(self) -> None:
        name = f"in-{len(self.leases)}"
        self._track(self.book.add(name, name, raises=False))

    def _track(self, lease: Lease) -> None:
        self.leases.append(lease)

        def done(_: Future[OcrResult]) -> None:
            self.results[lease.job_id] += 1

        lease.future.add_done_callback(done)

    @rule(holder=st.sampled_from(HOLDERS))
    def send(self, holder: str) -> None:
        if self.book.holds(holder) >= 2:
            return
        lease = self.book.take()
        if lease is not None:
            self.book.assign(lease, holder)

    @rule(holder=st.sampled_from(HOLDERS))
    def ack(self, holder: str) -> None:
        head = self.book.head(holder)
        if head is not None and head.state is LeaseState.SENT:
            assert self.book.acked(holder, head.job_id) is head

    @rule(holder=st.sampled_from(HOLDERS), pages=st.integers(min_value=0, max_value=3))
    def outcome(self, holder: str, pages: int) -> None:
        """The head ends: read (``pages`` 0), or found a document of ``pages`` page jobs,
        which take its place."""
        head = self.book.head(holder)
        if head is None or head.state is not LeaseState.ACKED:
            return
        assert self.book.settle(holder, head.job_id) is head
        if not pages:
            self.book.finish(head, Recognition((Page("ok"),)), pid=1)
            return
        spans = [(PageSpan(str(head.source), at, 1), f"{head.label} [{at}]") for at in range(pages)]

        def found(_: tuple[PageSpan, ...], futures: list[Future[OcrResult]]) -> None:
            assert not head.future.done()  # told before the job's own future is set
            self.found[head.job_id] = futures

        children = self.book.expand(head, spans, found, Attempt.of(1, None, 0.1))
        assert [child.source for child in children] == [span for span, _ in spans]
        for child in children:
            self._track(child)
        self.expanded += 1
        if self.closed:  # as the supervisor does once it no longer serves
            self.book.fail_queued(PoolClosed("cancelled at shutdown"))

    @rule(holder=st.sampled_from(HOLDERS))
    def decline(self, holder: str) -> None:
        head = self.book.head(holder)
        if head is not None and head.state is LeaseState.SENT:
            lease = self.book.decline(holder, head.job_id)
            assert lease is head
            self.book.put_back(lease)

    @rule(holder=st.sampled_from(HOLDERS), timed_out=st.booleans())
    def holder_dies(self, holder: str, timed_out: bool) -> None:
        for lease in self.book.release(holder):
            if lease.state is not LeaseState.ACKED:
                self.book.put_back(lease)
            elif timed_out:
                self.book.finish(lease, error=JobTimeout("late", timeout=1.0))
            else:
                error = WorkerCrashed("died", exitcode=-9)
                self.book.charge(lease, Attempt.of(1, error, 1.0), error, retry=not self.closed)

    @rule(index=st.integers(min_value=0, max_value=50))
    def cancel(self, index: int) -> None:
        if self.leases:
            self.leases[index % len(self.leases)].future.cancel()  # False once it runs

    @rule(index=st.integers(min_value=0, max_value=50))
    def request_kill(self, index: int) -> None:
        if self.leases:
            self.book.request_kill(self.leases[index % len(self.leases)].future)

    @rule(seconds=st.floats(min_value=0.0, max_value=10.0))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self) -> None:
        self.closed = True
        self.book.fail_queued(PoolClosed("cancelled at shutdown"))

    @invariant()
    def every_job_is_in_exactly_one_place(self) -> None:
        self._resolve()
        held = [lease for holder in HOLDERS for lease in self.book.held(holder)]
        assert len(held) == len(set(held))
        for lease in self.leases:
            places = (
                (lease in held)
                + (lease.state is LeaseState.QUEUED)
                + (lease.state is LeaseState.DONE)
            )
            assert places == 1 or (lease.future.cancelled() and lease.state is LeaseState.QUEUED)
            assert lease.retries_used <= 2
            if lease.state is LeaseState.DONE:
                assert lease.future.done()
        assert all(count == 1 for count in self.results.values())
        assert self.errors.records == []  # nothing finished or resolved twice

    def teardown(self) -> None:
        logging.getLogger("ocrpool").removeHandler(self.errors)
        self.book.fail_all(PoolClosed("closed"))
        self._resolve()
        assert all(lease.future.done() for lease in self.leases)
        assert all(self.results[lease.job_id] == 1 for lease in self.leases)
        finished = self.book.completed + self.book.failed
        cancelled = sum(lease.future.cancelled() for lease in self.leases)
        jobs = len(self.leases) - self.expanded  # a split job is counted as its page jobs
        assert finished + cancelled == self.book.submitted == jobs
        assert self.book.open == 0
        assert len(self.found) == self.expanded


TestLeaseMachine = LeaseMachine.TestCase
TestLeaseMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


class _Errors(logging.Handler):
    """Errors the book logs: a job finished twice, a future resolved twice."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("quarantined"):
            self.records.append(record.getMessage())
