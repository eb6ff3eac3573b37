"""What a run did: the running tally the progress display reads, and the closing summary."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ocrpool.batch.ledger import Verdict
from ocrpool.batch.records import Record
from ocrpool.stats import PageProgress

SHUTDOWN_CAUSE = "shutdown"
"""The pool's exit cause for workers stopped at the end: not a recycle."""


class Outcome(str, enum.Enum):
    OK = "ok"
    """Every input in scope is recorded as OK."""
    SOME_FAILED = "some_failed"
    """Some inputs failed, in this run or (not retried) in an earlier one."""
    INTERRUPTED = "interrupted"
    TOO_MANY_FAILURES = "too_many_failures"
    """``max_failures`` inputs in a row failed, and the run stopped there."""


@dataclass
class Tally:
    """Counts of one run. Only the runner writes it."""

    queued: int = 0
    """Inputs this run will record; grows while the scan goes on."""
    scanning: bool = True
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    """Failed inputs by error type."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Files that are not inputs, by reason."""
    earlier: Counter[Verdict] = field(default_factory=Counter)
    """Inputs not sent: done or failed in an earlier run, or found twice in this one."""
    pages: int = 0
    empty_pages: int = 0
    """Pages that came back without text (``--strict`` fails their inputs)."""
    failed_pages: int = 0
    """Pages of split documents that failed for good."""
    failed_page_documents: int = 0
    """Documents with ``failed_pages`` among them: the partial ones, and those whose every
    page failed."""
    partial: int = 0
    """Documents recorded with some pages failed (``PagesFailed``; counted in ``failed``)."""
    peak_rss_mb: float | None = None
    worker_exits: dict[str, int] = field(default_factory=dict)
    split: PageProgress = field(default_factory=PageProgress)
    """The documents the pool split into page jobs, and their pages (from its stats)."""

    @property
    def recorded(self) -> int:
        return self.ok + self.failures

    @property
    def work_queued(self) -> int:
        """What the ETA divides: inputs to record, each split document counted as its
        pages (a 40-page document is 40 of a single image's work, not 1)."""
        return self.queued - self.split.documents + self.split.pages

    @property
    def work_done(self) -> int:
        """``work_queued`` done: inputs recorded, and the pages in of split documents."""
        return self.recorded - self.split.documents_done + self.split.pages_done

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def recycles(self) -> int:
        """Workers replaced during the run, for any reason but the final shutdown."""
        return sum(n for cause, n in self.worker_exits.items() if cause != SHUTDOWN_CAUSE)

    def add(self, record: Record) -> None:
        if record.error is None:
            self.ok += 1
        else:
            self.failed[type(record.error).__name__] += 1
        self.pages += len(record.result.pages)
        self.empty_pages += len(record.empty_pages)
        self.failed_pages += len(record.result.failed_pages)
        self.failed_page_documents += bool(record.result.failed_pages)
        self.partial += record.partial
        self.see_rss(record.result.rss_mb)

    def see_rss(self, rss_mb: float | None) -> None:
        if rss_mb is not None and (self.peak_rss_mb is None or rss_mb > self.peak_rss_mb):
            self.peak_rss_mb = rss_mb


@dataclass(frozen=True)
class Summary:
    tally: Tally
    elapsed_s: float
    interrupted: bool = False
    stopped_after: int | None = None
    """The failures in a row that stopped the run (``max_failures``), if they did."""
    resumable: bool = True
    """Whether a rerun skips what this one recorded: not to standard output (no ledger)."""

    @property
    def rate(self) -> float:
        """Inputs recorded per second."""
        return self.tally.recorded / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def outcome(self) -> Outcome:
        if self.interrupted:
            return Outcome.INTERRUPTED
        if self.stopped_after is not None:
            return Outcome.TOO_MANY_FAILURES
        if self.tally.failures or self.tally.earlier[Verdict.FAILED_BEFORE]:
            return Outcome.SOME_FAILED
        return Outcome.OK

    def to_dict(self) -> dict[str, Any]:
        t = self.tally
        return {
            "ok": t.ok,
            "failed": dict(t.failed),
            "skipped": dict(t.skipped),
            "done_before": t.earlier[Verdict.DONE],
            "failed_before": t.earlier[Verdict.FAILED_BEFORE],
            "duplicates": t.earlier[Verdict.DUPLICATE],
            "pages": t.pages,
            "empty_pages": t.empty_pages,
            "pages_failed": t.failed_pages,
            "partial": t.partial,
            "elapsed_s": round(self.elapsed_s, 3),
            "images_per_s": round(self.rate, 2),
            "worker_exits": dict(t.worker_exits),
            "peak_worker_rss_mb": None if t.peak_rss_mb is None else round(t.peak_rss_mb, 1),
            "outcome": self.outcome.value,
        }

    def lines(self) -> list[str]:
        t = self.tally
        head = "done"
        again = (
            "run the same command again to {}"
            if self.resumable
            else "standard output keeps no ledger: a rerun does every input again"
        )
        if self.interrupted:
            head = f"interrupted ({again.format('resume')})"
        elif self.stopped_after is not None:
            head = (
                f"stopped: {self.stopped_after} inputs in a row failed (--max-failures); "
                + again.format("go on with the rest")
            )
        lines = [
            f"ocrpool run: {head}",
            f"  ok:           {t.ok}",
            f"  failed:       {t.failures}{_breakdown(t.failed)}",
            f"  skipped:      {sum(t.skipped.values())}{_breakdown(t.skipped)}",
        ]
        earlier = [
            f"{t.earlier[Verdict.DONE]} ok",
            f"{t.earlier[Verdict.FAILED_BEFORE]} failed (--retry-failed retries them)",
        ]
        if t.earlier[Verdict.DUPLICATE]:
            earlier.append(f"{t.earlier[Verdict.DUPLICATE]} found twice")
        lines += [
            f"  done before:  {', '.join(earlier)}",
            f"  pages:        {t.pages} ({t.empty_pages} without text)",
            *_pages_failed(t),
            f"  elapsed:      {self.elapsed_s:.1f} s ({self.rate:.2f} images/s)",
            f"  worker exits: {_counts(t.worker_exits) or 'none'}",
            f"  peak worker RSS: {'-' if t.peak_rss_mb is None else f'{t.peak_rss_mb:.0f} MB'}",
        ]
        return lines


def _pages_failed(t: Tally) -> list[str]:
    """The pages of split documents that failed, when some did."""
    if not t.failed_pages:
        return []
    documents = f"{t.failed_page_documents} document" + "s" * (t.failed_page_documents != 1)
    return [f"  pages failed: {t.failed_pages} (in {documents}, {t.partial} partial)"]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _breakdown(counts: Counter[str]) -> str:
    return f" ({_counts(counts)})" if counts else ""
