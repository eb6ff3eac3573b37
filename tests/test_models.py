"""ocrpool models on a temporary model directory; the CLI once against real Aspose."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from ocrpool.cli import main
from ocrpool.engines.aspose import models
from ocrpool.engines.aspose.models import AsposeView, EntryKind, ModelStatus


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """``en_ocr_v1.bin`` (current) and ``old_fr_ocr_v1.bin`` (old), plus a file outside."""
    directory = tmp_path / "models"
    directory.mkdir()
    (directory / "en_ocr_v1.bin").write_bytes(b"e" * 1000)
    (directory / "old_fr_ocr_v1.bin").write_bytes(b"f" * 20)
    (tmp_path / "outside.bin").write_bytes(b"keep me")
    return directory


def view_of(directory: Path, listed: tuple[str, ...] = ()) -> AsposeView:
    """What Aspose would report if ``directory`` were its model directory."""
    return AsposeView(str(directory), listed, str(directory.parent / "aspose_data"), ())


def names(entries: Iterable[models.ModelFile]) -> list[str]:
    return [entry.name for entry in entries]


def test_audit_marks_old_and_current(model_dir: Path) -> None:
    inventory = models.merge(view_of(model_dir))
    audit = {model.name: (model.status(), model.size_bytes) for model in inventory.models}
    assert audit == {
        "en_ocr_v1.bin": (ModelStatus.CURRENT, 1000),
        "old_fr_ocr_v1.bin": (ModelStatus.OLD, 20),
    }
    assert inventory.models[0].path == model_dir / "en_ocr_v1.bin"
    assert inventory.models[0].status(old_prefix="en_") is ModelStatus.OLD


def test_a_missing_directory_has_no_models(tmp_path: Path) -> None:
    inventory = models.merge(view_of(tmp_path / "nowhere"))
    assert inventory.models == ()


def test_what_aspose_lists_is_merged_with_the_files(model_dir: Path) -> None:
    listed = ("en_ocr_v1.bin", "qwen.gguf")
    inventory = models.merge(view_of(model_dir, listed))
    by_name = {model.name: model for model in inventory.models}
    assert by_name["en_ocr_v1.bin"].listed_by_aspose
    assert not by_name["old_fr_ocr_v1.bin"].listed_by_aspose
    assert by_name["qwen.gguf"].kind is EntryKind.NOT_ON_DISK


def test_an_override_ignores_what_aspose_listed_for_its_own_directory(
    model_dir: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    inventory = models.merge(view_of(model_dir, ("en_ocr_v1.bin",)), elsewhere)
    assert inventory.model_dir == elsewhere
    assert inventory.models == ()


def test_dry_run_deletes_nothing(model_dir: Path) -> None:
    report = models.prune(models.merge(view_of(model_dir)))
    assert report.dry_run
    assert names(report.to_delete) == ["old_fr_ocr_v1.bin"]
    assert report.deleted == ()
    assert sorted(os.listdir(model_dir)) == ["en_ocr_v1.bin", "old_fr_ocr_v1.bin"]


def test_prune_deletes_only_the_old_model(model_dir: Path) -> None:
    report = models.prune(models.merge(view_of(model_dir)), dry_run=False)
    assert names(report.deleted) == ["old_fr_ocr_v1.bin"]
    assert os.listdir(model_dir) == ["en_ocr_v1.bin"]


def test_keep_is_honoured(model_dir: Path) -> None:
    (model_dir / "old_de_ocr_v1.bin").write_bytes(b"d")
    inventory = models.merge(view_of(model_dir))
    report = models.prune(inventory, keep=["old_fr_ocr_v1.bin"], dry_run=False)
    assert names(report.kept) == ["old_fr_ocr_v1.bin"]
    assert names(report.deleted) == ["old_de_ocr_v1.bin"]
    assert sorted(os.listdir(model_dir)) == ["en_ocr_v1.bin", "old_fr_ocr_v1.bin"]


def test_symlink_escapes_are_refused(model_dir: Path, tmp_path: Path) -> None:
    (model_dir / "old_link.bin").symlink_to(tmp_path / "outside.bin")
    (model_dir / "old_dir").symlink_to(tmp_path, target_is_directory=True)
    inventory = models.merge(view_of(model_dir))
    report = models.prune(inventory, dry_run=False)
    assert names(report.deleted) == ["old_fr_ocr_v1.bin"]
    assert [(r.model.name, r.reason) for r in report.refused] == [("old_link.bin", "a symlink")]
    assert (tmp_path / "outside.bin").read_bytes() == b"keep me"
    assert (model_dir / "old_link.bin").is_symlink()


def test_names_leaving_the_directory_are_refused(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "old_escape.bin").write_bytes(b"x")
    inventory = models.merge(view_of(model_dir, ("../old_escape.bin",)))
    report = models.prune(inventory, dry_run=False)
    assert ("../old_escape.bin", "outside the model directory") in [
        (r.model.name, r.reason) for r in report.refused
    ]
    assert (tmp_path / "old_escape.bin").exists()


def test_a_file_reached_through_a_symlinked_directory_is_refused(
    model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "old_x.bin").write_bytes(b"x")
    (model_dir / "sub").symlink_to(tmp_path / "real", target_is_directory=True)
    model = models.ModelFile("sub/old_x.bin", model_dir / "sub/old_x.bin", EntryKind.FILE, 1)
    assert models.refusal_reason(model_dir, model) == (
        "outside the model directory (through a symlinked directory)"
    )


def test_an_empty_prefix_is_refused(model_dir: Path) -> None:
    with pytest.raises(ValueError, match="prefix"):
        models.prune(models.merge(view_of(model_dir)), prefix="")


@pytest.mark.aspose
def test_cli_against_aspose(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "path", "--model-dir", str(model_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(model_dir)

    assert main(["models", "audit", "--model-dir", str(model_dir), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert [(row["status"], row["name"]) for row in audit] == [
        ("CURRENT", "en_ocr_v1.bin"),
        ("OLD", "old_fr_ocr_v1.bin"),
    ]

    assert main(["models", "prune", "--model-dir", str(model_dir)]) == 0
    assert "dry run: nothing deleted" in capsys.readouterr().out
    assert main(["models", "prune", "--model-dir", str(model_dir), "--yes"]) == 0
    assert "deleted 1 file(s), 20 B" in capsys.readouterr().out
    assert os.listdir(model_dir) == ["en_ocr_v1.bin"]


@pytest.mark.aspose
def test_aspose_default_directory_is_absolute_and_may_be_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # Aspose's model directory is relative to the working directory
    inventory = models.inventory()
    assert inventory.model_dir == tmp_path / "Aspose.AI.LLM" / "models"
    assert inventory.models == ()
    assert os.listdir(tmp_path) == []  # asking Aspose left nothing behind
