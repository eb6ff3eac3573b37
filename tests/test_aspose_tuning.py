"""The engine's adopted recognition defaults change how much work Aspose does, not what it
reads: the same text as Aspose's own settings on every shipped and test image, and exports
still whole. One spawned child runs both engines; pytest never imports ``aspose.ocr``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pypdf
import pytest

from ocrpool.engines.aspose.child import run_in_child
from ocrpool.engines.aspose.engine import UNTUNED_OPTIONS, AsposeEngine

pytestmark = [pytest.mark.aspose, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
IMAGES = sorted(
    path
    for folder in (ROOT / "examples" / "images", ROOT / "tests" / "data")
    for path in folder.iterdir()
    if path.suffix in {".tif", ".png"}
)
PHOTOTEST = ROOT / "tests" / "data" / "phototest.tif"


def read_with_and_without_tuning() -> dict[str, Any]:
    """Runs in the child: every image's pages' text with the engine's defaults and with
    Aspose's own settings, and a PDF export made with the image not retained by default."""
    texts: dict[str, dict[str, list[str]]] = {}
    for name, options in (("tuned", {}), ("untuned", dict(UNTUNED_OPTIONS))):
        engine = AsposeEngine(warmup=False, **options)
        engine.start()
        texts[name] = {
            _key(path): [page.text for page in engine.recognize(str(path)).pages] for path in IMAGES
        }
        engine.close()
    exporting = AsposeEngine(warmup=False, retain_image_for_export=False, exports=("pdf",))
    exporting.start()
    pdf = exporting.recognize(str(PHOTOTEST)).exports[0].data
    exporting.close()
    return {"texts": texts, "pdf": pdf}


def _key(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(scope="module")
def session() -> dict[str, Any]:
    results: dict[str, Any] = run_in_child(read_with_and_without_tuning, timeout=300)
    return results


def test_every_shipped_and_test_image_reads_the_same_as_with_asposes_own_settings(
    session: dict[str, Any],
) -> None:
    tuned, untuned = session["texts"]["tuned"], session["texts"]["untuned"]
    assert set(tuned) == {_key(path) for path in IMAGES} and len(IMAGES) >= 7
    transcribed = [path for path in IMAGES if path.with_suffix(".gt.txt").is_file()]
    assert transcribed and all(all(tuned[_key(path)]) for path in transcribed)
    assert tuned == untuned


def test_a_searchable_pdf_keeps_its_image_and_text_layer(session: dict[str, Any]) -> None:
    (page,) = pypdf.PdfReader(io.BytesIO(session["pdf"])).pages
    assert len(page.images) == 1
    words = " ".join(page.extract_text().split())
    first_line = session["texts"]["tuned"][_key(PHOTOTEST)][0].splitlines()[0]
    assert words.startswith(" ".join(first_line.split()))
