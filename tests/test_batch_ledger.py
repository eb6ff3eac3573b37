"""Resume decisions (``ocrpool.batch.ledger``): one index for every output format."""

from __future__ import annotations

import sqlite3

import pytest

from ocrpool.batch.errors import OutputFailed
from ocrpool.batch.ledger import Entry, Ledger, Verdict
from ocrpool.batch.records import InputFile


def _ledger(entries: list[Entry], *, retry_failed: bool = False) -> Ledger:
    ledger = Ledger(retry_failed=retry_failed)
    ledger.load(entries)
    return ledger


def test_an_input_recorded_with_the_same_size_and_mtime_is_done() -> None:
    ledger = _ledger([Entry("/a.png", 10, 1.5, True), Entry("/b.png", 10, 1.5, False)])
    assert ledger.claim(InputFile("/a.png", 10, 1.5)) is Verdict.DONE
    assert ledger.claim(InputFile("/b.png", 10, 1.5)) is Verdict.FAILED_BEFORE
    assert ledger.claim(InputFile("/c.png", 10, 1.5)) is Verdict.NEW


def test_a_changed_input_is_done_again() -> None:
    ledger = _ledger([Entry("/a.png", 10, 1.5, True), Entry("/b.png", 10, 1.5, True)])
    assert ledger.claim(InputFile("/a.png", 11, 1.5)) is Verdict.NEW
    assert ledger.claim(InputFile("/b.png", 10, 2.5)) is Verdict.NEW


def test_retry_failed_retries_only_failures() -> None:
    ledger = _ledger(
        [Entry("/ok.png", 1, 1.0, True), Entry("/bad.png", 1, 1.0, False)], retry_failed=True
    )
    assert ledger.claim(InputFile("/ok.png", 1, 1.0)) is Verdict.DONE
    assert ledger.claim(InputFile("/bad.png", 1, 1.0)) is Verdict.RETRY


def test_the_last_entry_for_a_path_wins() -> None:
    ledger = _ledger([Entry("/a.png", 1, 1.0, False), Entry("/a.png", 1, 1.0, True)])
    assert ledger.claim(InputFile("/a.png", 1, 1.0)) is Verdict.DONE


def test_inputs_that_could_not_be_stat_ed_match_on_their_path() -> None:
    ledger = _ledger([Entry("/broken.png", None, None, False)])
    assert ledger.claim(InputFile("/broken.png", None, None)) is Verdict.FAILED_BEFORE


def test_a_path_is_claimed_once_per_run() -> None:
    ledger = _ledger([Entry("/old.png", 1, 1.0, False)], retry_failed=True)
    assert ledger.claim(InputFile("/new.png", 1, 1.0)) is Verdict.NEW
    assert ledger.claim(InputFile("/new.png", 1, 1.0)) is Verdict.DUPLICATE
    assert ledger.claim(InputFile("/old.png", 1, 1.0)) is Verdict.RETRY
    assert ledger.claim(InputFile("/old.png", 1, 1.0)) is Verdict.DUPLICATE


def test_names_that_are_not_utf8_are_kept_exactly() -> None:
    name = b"/caf\xe9.png".decode("utf-8", "surrogateescape")
    other = b"/caf\xe8.png".decode("utf-8", "surrogateescape")
    ledger = _ledger([Entry(name, 1, 1.0, True)])
    assert ledger.claim(InputFile(name, 1, 1.0)) is Verdict.DONE
    assert ledger.claim(InputFile(other, 1, 1.0)) is Verdict.NEW


def test_the_ledgers_disk_failing_is_an_output_failure() -> None:
    """A full ``$TMPDIR`` under SQLite's temporary file ended the run in a traceback."""

    class FullDisk:
        def execute(self, *args: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        def close(self) -> None:
            pass

    ledger = Ledger()
    ledger._db = FullDisk()  # type: ignore[assignment]
    with pytest.raises(OutputFailed, match="the temporary ledger: database or disk is full"):
        ledger.load([Entry("/a.png", 10, 1.5, True)])
    with pytest.raises(OutputFailed):
        ledger.claim(InputFile("/a.png", 10, 1.5))
