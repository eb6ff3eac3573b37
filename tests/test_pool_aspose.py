"""The real engine through the pool: recognition survives recycles; the supervisor stays clean."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from imaging import write_text_image

from ocrpool import EngineConfigError, EngineOptionError, ExitCause, JobOptions, OcrPool, WorkerExit
from ocrpool.engines.aspose.runtime import CONCURRENT_GC_VARIABLE, TIERED_COMPILATION_VARIABLE

pytestmark = pytest.mark.aspose


def test_two_aspose_workers_recognise_across_recycles(tmp_path: Path) -> None:
    variants = [("Quick brown foxes", "jump over lazy dogs"), ("Seven silver spoons", "on a table")]
    images = [str(write_text_image(tmp_path / f"page-{i}.png", variants[i % 2])) for i in range(6)]
    exits: list[WorkerExit] = []
    with OcrPool(
        workers=2,
        spares=1,
        max_jobs_per_worker=2,
        recycle_jitter=0.0,
        engine="aspose",
        on_worker_exit=exits.append,
    ) as pool:
        results = list(pool.imap(images))
    assert all(r.ok for r in results), [r.error for r in results]
    for i, result in enumerate(results):
        first_word = variants[i % 2][0].split()[0]
        assert first_word in result.text
        assert result.evaluation_mode or "Trial" not in result.text
    assert sum(e.cause is ExitCause.MAX_JOBS for e in exits) >= 2
    assert all(e.rss_mb is not None and e.rss_mb > 100 for e in exits if e.jobs)
    assert "aspose.ocr" not in sys.modules
    assert "libcoreclr" not in Path(f"/proc/{os.getpid()}/maps").read_text()


def test_a_language_aspose_does_not_know_breaks_the_pool_at_the_first_start() -> None:
    """Only a started engine knows its languages: the first start says, and none is retried."""
    exits: list[WorkerExit] = []
    with pytest.raises(EngineConfigError) as caught:
        OcrPool(
            workers=1,
            spares=0,
            engine="aspose",
            engine_options={"language": "klingon"},
            on_worker_exit=exits.append,
        )
    assert caught.value.option == "language"
    assert "unknown language 'klingon'; choose one of: " in caught.value.message
    assert "ENG" in caught.value.message
    assert [exit.cause for exit in exits] == [ExitCause.START_FAILED]


def test_a_job_s_own_unknown_language_fails_that_job_alone(tmp_path: Path) -> None:
    image = str(
        write_text_image(tmp_path / "page.png", ("Quick brown foxes", "jump over lazy dogs"))
    )
    with OcrPool(workers=1, spares=0, engine="aspose") as pool:
        refused = pool.submit(image, options=JobOptions(language="klingon")).exception()
        read = pool.recognize(image)
    assert isinstance(refused, EngineOptionError) and refused.option == "language"
    assert "Quick" in read.text


ADOPTED = {
    TIERED_COMPILATION_VARIABLE: "0",
    CONCURRENT_GC_VARIABLE: "0",
    "retain_image_for_export": False,
    "language_detection_level": "BY_PARAGRAPH",
}
"""What a worker of the default engine runs with (issues 14 and 19)."""


@pytest.mark.parametrize(
    ("options", "changed"),
    [
        ({}, {}),
        ({"tiered_compilation": True}, {TIERED_COMPILATION_VARIABLE: None}),
        ({"concurrent_gc": True}, {CONCURRENT_GC_VARIABLE: None}),
        ({"retain_image_for_export": True}, {"retain_image_for_export": True}),
        ({"exports": ["txt"]}, {"retain_image_for_export": True}),
        (
            {"language_detection_level": "by_page"},
            {"language_detection_level": "BY_PAGE"},
        ),
    ],
)
def test_workers_run_the_adopted_settings_unless_turned_off(
    tmp_path: Path, options: dict[str, object], changed: dict[str, object]
) -> None:
    image = write_text_image(tmp_path / "page.png")
    with OcrPool(
        workers=1,
        spares=0,
        engine="runtime_probe:RuntimeProbe",
        engine_options={**options, "warmup": False},
    ) as pool:
        report = json.loads(pool.recognize(str(image)).text)
    assert report == {**ADOPTED, **changed}
    assert not {TIERED_COMPILATION_VARIABLE, CONCURRENT_GC_VARIABLE} & os.environ.keys()
