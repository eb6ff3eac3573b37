"""A job's own settings (``submit(options=JobOptions(...))``) reach its engine alone, split
documents merge a job's own exports, and a split document can be killed as a whole."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from fakes import fake_pool, make_document, make_inputs
from pypdf import PdfReader

from ocrpool import EngineError, ExportFormat, JobOptions, OcrResult
from ocrpool.engines.base import Source
from ocrpool.results import Page, Recognition

PDF, HOCR, TXT, DOCX = ExportFormat.PDF, ExportFormat.HOCR, ExportFormat.TXT, ExportFormat.DOCX


class PlainEngine:
    """An engine that takes no per-job settings (as third-party engines written before
    them): workers load it by name."""

    def start(self) -> None:
        pass

    def recognize(self, source: Source) -> Recognition:
        return Recognition((Page("plain"),))

    def close(self) -> None:
        pass


def _formats(result: OcrResult) -> list[ExportFormat]:
    return [export.format for export in result.exports]


def test_a_job_s_own_settings_replace_the_engine_s_for_it_alone(tmp_path: Path) -> None:
    [image] = make_inputs(tmp_path, ["scan.png"])
    with fake_pool(workers=1, spares=0, engine_options={"exports": ["txt"]}) as pool:
        own = pool.recognize(image, options=JobOptions(exports=(PDF, HOCR), rotate_pages=True))
        plain = pool.recognize(image)
    assert _formats(own) == [PDF, HOCR] and own.pages[0].rotation == 0.0
    assert _formats(plain) == [TXT] and plain.pages[0].rotation is None


def test_a_split_document_merges_a_job_s_own_exports(tmp_path: Path) -> None:
    document = make_document(tmp_path / "doc.tif", 4)
    with fake_pool(workers=2, spares=0, split_min_pages=2) as pool:
        merged = pool.recognize(document, options=JobOptions(exports=(PDF,)))
        assert pool.stats().submitted == 4  # one job a page
        whole = pool.recognize(document, options=JobOptions(exports=(DOCX,)))
        assert pool.stats().submitted == 5  # DOCX cannot be merged: one job
    assert len(PdfReader(io.BytesIO(merged.export(PDF))).pages) == 4
    assert [page.text for page in merged.pages] == [f"doc p{n}" for n in range(1, 5)]
    assert whole.export(DOCX).decode().count("docx export of") == 4


def test_an_engine_without_job_settings_fails_only_the_jobs_that_have_some(
    tmp_path: Path,
) -> None:
    [image] = make_inputs(tmp_path, ["scan.png"])
    with fake_pool(workers=1, spares=0, engine="test_pool_job_settings:PlainEngine") as pool:
        with pytest.raises(EngineError, match="takes no per-job settings"):
            pool.recognize(image, options=JobOptions(language="deu"))
        assert pool.recognize(image).text == "plain"


@pytest.mark.slow
def test_kill_stops_the_running_pages_of_a_split_document(tmp_path: Path) -> None:
    document = make_document(tmp_path / "doc.tif", 4)
    with fake_pool(workers=2, spares=0, split_min_pages=2, engine_options={"delay": 300}) as pool:
        future = pool.submit(document)
        deadline = time.monotonic() + 30
        while (stats := pool.stats()).submitted < 4 or stats.queued > 2:  # two pages running
            assert time.monotonic() < deadline, "the pages never left the queue"
            time.sleep(0.01)
        assert pool.cancel(future, kill=True)
        assert future.cancelled()
        while pool.stats().exits.get("cancelled", 0) < 2:
            assert time.monotonic() < deadline + 30, "the running pages were not stopped"
            time.sleep(0.01)
