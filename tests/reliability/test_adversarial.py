"""Property-based tests of hostile inputs: every one gives one clear record or a counted
skip, never a crash of the run or a stuck run (hypothesis, derandomized)."""

from __future__ import annotations

import contextlib
import io
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ocrpool import ImageTooLarge, InvalidInput, JobTimeout, OcrPool
from ocrpool.batch import BatchOptions, OutputFormat, run_batch
from ocrpool.batch.admission import admit, admit_bytes, stat_input
from ocrpool.batch.progress import Silent
from ocrpool.batch.scan import Skipped
from ocrpool.formats import Format, file_layout, image_size, read_image_size, sniff

from .hostile import Change, ChangingPool, Entry, deep_file, make_entry, png_header, real_files
from .runs import recorded_paths

FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None)
RUNS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FILES = real_files()
FORMATS = {
    "png": Format.PNG,
    "jpg": Format.JPEG,
    "tif": Format.TIFF,
    "bmp": Format.BMP,
    "gif": Format.GIF,
    "pdf": Format.PDF,
}
SUFFIXES = [".png", ".jpg", ".jpeg", ".tif", ".bmp", ".gif", ".pdf", ".dat", ".md", ""]


@pytest.fixture(scope="module")
def pool() -> Iterator[OcrPool]:
    with OcrPool(engine="fake", workers=2, spares=0, job_timeout=2, kill_grace=0.5) as shared:
        yield shared


def run(folder: Path, out: Path, pool: ChangingPool, **options: Any) -> list[str]:
    """``ocrpool run`` as a library over ``folder``; the paths recorded."""
    fmt = options.pop("format", OutputFormat.JSONL)
    batch = BatchOptions(out=str(out), inputs=(str(folder),), format=fmt, **options)
    summary = run_batch(batch, lambda: pool, progress=Silent())
    recorded = recorded_paths(out, fmt.value)
    assert summary.tally.recorded == len(recorded)
    return recorded


# ---- formats and admission ---------------------------------------------------------


@FAST
@given(st.binary(max_size=2048))
def test_sniffing_and_sizing_random_bytes_never_raise(data: bytes) -> None:
    fmt = sniff(data[:16])
    size = read_image_size(io.BytesIO(data))
    assert fmt is None or isinstance(fmt, Format)
    assert size is None or (size[0] > 0 and size[1] > 0)
    with contextlib.suppress(InvalidInput):
        assert admit_bytes(data, max_pixels=10**6) in Format


@FAST
@given(st.sampled_from(sorted(FILES)), st.floats(0, 1), st.sampled_from(SUFFIXES))
def test_every_format_cut_anywhere_is_admitted_or_refused_clearly(
    tmp_path_factory: pytest.TempPathFactory, fmt: str, fraction: float, suffix: str
) -> None:
    data = FILES[fmt]
    path = tmp_path_factory.mktemp("cut") / f"x{suffix}"
    path.write_bytes(data[: int(len(data) * fraction)])
    try:
        verdict = admit(str(path), stat_input(str(path)), max_pixels=10**6)
    except InvalidInput as error:
        assert error.input == str(path) and error.message
        return
    assert isinstance(verdict, (Format, Skipped))
    if isinstance(verdict, Skipped):  # only a name that claims no image may be skipped
        assert suffix in (".dat", ".md", "")


@FAST
@given(st.sampled_from(sorted(FILES)), st.floats(0, 1))
def test_a_worker_reads_the_size_admission_reads_of_every_format_cut_anywhere(
    tmp_path_factory: pytest.TempPathFactory, fmt: str, fraction: float
) -> None:
    """The worker's check (``file_layout``, by ``pread``) and admission's (``image_size``,
    through a file object) read one size, or neither does: the worker refuses no file
    admission let in, and lets in none it refused."""
    data = FILES[fmt]
    path = tmp_path_factory.mktemp("cut") / f"x.{fmt}"
    path.write_bytes(data[: int(len(data) * fraction)])
    layout = file_layout(str(path), sizes=True)
    assert layout.largest == image_size(str(path))
    assert layout.pages == file_layout(str(path)).pages
    assert layout.largest is None or layout.pages is not None


@FAST
@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1), st.integers(1, 10**12))
def test_a_declared_size_past_the_limit_is_refused_before_any_decoder(
    width: int, height: int, limit: int
) -> None:
    data = png_header(width, height)
    if width * height > limit:
        with pytest.raises(ImageTooLarge) as caught:
            admit_bytes(data, max_pixels=limit)
        assert (caught.value.width, caught.value.height) == (width, height)
    else:
        assert admit_bytes(data, max_pixels=limit) is Format.PNG


@FAST
@given(st.sampled_from(sorted(FILES)), st.sampled_from(SUFFIXES))
def test_content_decides_the_format_not_the_name(
    tmp_path_factory: pytest.TempPathFactory, fmt: str, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("named") / f"scan{suffix}"
    path.write_bytes(FILES[fmt])
    assert admit(str(path), stat_input(str(path)), max_pixels=10**6) is FORMATS[fmt]


# ---- whole runs ---------------------------------------------------------------------

NAMES = st.one_of(
    st.text(
        st.characters(codec="utf-8", exclude_characters="/\x00"),
        min_size=1,
        max_size=40,
    ),
    st.binary(min_size=1, max_size=40).map(lambda b: os.fsdecode(b.replace(b"/", b"_"))),
    st.just("new\nline"),
    st.just("é" * 120),  # 240 bytes: near the 255-byte limit of a name
).filter(
    lambda name: name not in (".", "..") and len(os.fsencode(name)) <= 240 and "\x00" not in name
)
ENTRIES = st.lists(
    st.tuples(NAMES, st.sampled_from(SUFFIXES), st.sampled_from(list(Entry))),
    min_size=1,
    max_size=12,
    unique_by=lambda item: item[0] + item[1],
)


@RUNS
@given(ENTRIES, st.sampled_from(list(OutputFormat)), st.integers(0, 2**32))
def test_a_folder_of_hostile_entries_gives_one_record_or_one_skip_each(
    tmp_path_factory: pytest.TempPathFactory,
    pool: OcrPool,
    entries: list[tuple[str, str, Entry]],
    fmt: OutputFormat,
    seed: int,
) -> None:
    base = tmp_path_factory.mktemp("hostile")
    folder = base / "in"
    folder.mkdir()
    rng = random.Random(seed)
    made = [make_entry(folder, name + suffix, entry, rng) for name, suffix, entry in entries]
    out = base / ("texts" if fmt is OutputFormat.TXT else f"results.{fmt.value}")
    batch = BatchOptions(out=str(out), inputs=(str(folder),), format=fmt, max_pixels=10**8)
    summary = run_batch(batch, lambda: ChangingPool(pool, {}), progress=Silent())
    recorded = recorded_paths(out, fmt.value)
    assert len(set(recorded)) == len(recorded) == summary.tally.recorded
    assert len(recorded) + sum(summary.tally.skipped.values()) == len(made)
    inside = {str(p / "inside.png") for p in made if p.is_dir() and not p.is_symlink()}
    assert set(recorded) <= {str(p) for p in made} | inside


@RUNS
@given(st.lists(st.sampled_from(list(Change)), min_size=1, max_size=10))
def test_files_that_change_or_vanish_between_scan_and_ocr(
    tmp_path_factory: pytest.TempPathFactory, pool: OcrPool, changes: list[Change]
) -> None:
    base = tmp_path_factory.mktemp("changing")
    folder = base / "in"
    folder.mkdir()
    paths = [folder / f"page {n}.png" for n in range(len(changes))]
    for path in paths:
        path.write_bytes(FILES["png"])
    plan = {str(p): c for p, c in zip(paths, changes, strict=True) if c is not Change.FIFO}
    out = base / "results.jsonl"
    recorded = run(folder, out, ChangingPool(pool, plan))
    assert Counter(recorded) == Counter(str(p) for p in paths)


@pytest.mark.slow
def test_a_file_replaced_by_a_fifo_before_ocr_ends_as_a_timeout(
    tmp_path: Path, pool: OcrPool
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "page.png"
    path.write_bytes(FILES["png"])
    out = tmp_path / "results.jsonl"
    assert run(folder, out, ChangingPool(pool, {str(path): Change.FIFO})) == [str(path)]
    (record,) = [line for line in out.read_text().splitlines()]
    assert f'"type":"{JobTimeout.__name__}"' in record


LINES = st.lists(
    st.one_of(
        st.sampled_from(["", " ", "missing.png", "./a.png", "a.png", "sub/../b.png"]),
        st.integers(0, 2).map(lambda n: f"ABS/{'abc'[n]}.png"),
    ),
    max_size=12,
)


@RUNS
@given(LINES)
def test_from_list_lines_empty_relative_or_duplicated(
    tmp_path_factory: pytest.TempPathFactory, pool: OcrPool, lines: list[str]
) -> None:
    folder = tmp_path_factory.mktemp("listed")
    (folder / "sub").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (folder / name).write_bytes(FILES["png"])
    listing = folder / "list.txt"
    listing.write_text("".join(line.replace("ABS", str(folder)) + "\n" for line in lines))
    out = folder / "results.jsonl"
    here = os.getcwd()
    os.chdir(folder)  # relative lines are relative to the working directory
    try:
        batch = BatchOptions(out=str(out), from_list=str(listing))
        summary = run_batch(batch, lambda: ChangingPool(pool, {}), progress=Silent())
    finally:
        os.chdir(here)
    expected = {
        os.path.abspath(os.path.join(folder, line.replace("ABS", str(folder))))
        for line in lines
        if line
    }
    assert Counter(recorded_paths(out, "jsonl")) == Counter(expected)
    assert summary.tally.recorded == len(expected)


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_paths_past_path_max_are_recorded_or_counted(
    tmp_path: Path, pool: OcrPool, fmt: OutputFormat
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    deep_file(folder, depth=20, name_bytes=250)  # about 5,000 bytes: past PATH_MAX (4096)
    (folder / "near.png").write_bytes(FILES["png"])
    out = tmp_path / ("texts" if fmt is OutputFormat.TXT else f"results.{fmt.value}")
    batch = BatchOptions(out=str(out), inputs=(str(folder),), format=fmt)
    summary = run_batch(batch, lambda: ChangingPool(pool, {}), progress=Silent())
    recorded = recorded_paths(out, fmt.value)
    assert str(folder / "near.png") in recorded
    assert len(recorded) + sum(summary.tally.skipped.values()) == 2


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_names_that_are_not_utf8_are_recorded_in_every_format(
    tmp_path: Path, pool: OcrPool, fmt: OutputFormat
) -> None:
    """An SQLite run used to stop with ``UnicodeEncodeError`` on such a name in a text
    column (an error message quoting the path, the fake engine's text)."""
    folder = tmp_path / "in"
    folder.mkdir()
    good = os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png")
    empty = os.fsdecode(os.fsencode(folder) + b"/\xff.png")
    Path(good).write_bytes(FILES["png"])
    Path(empty).write_bytes(b"")
    out = tmp_path / ("texts" if fmt is OutputFormat.TXT else f"results.{fmt.value}")
    assert sorted(run(folder, out, ChangingPool(pool, {}), format=fmt)) == sorted([good, empty])
