"""ocrpool models on a temporary model directory; the CLI once against real Aspose."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ocrpool.cli import main, models as models_cli
from ocrpool.engines.aspose import models
from ocrpool.engines.aspose.models import AsposeView, EntryKind, ModelStatus


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """``en_ocr_v1.bin`` (current) and ``old_fr_ocr_v1.bin`` (old), plus a file outside,
    in a model directory of the data home ``tmp_path``."""
    directory = tmp_path / "Aspose.AI.LLM" / "models"
    directory.mkdir(parents=True)
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


def test_a_model_directory_names_its_data_home(tmp_path: Path) -> None:
    assert models.data_home_of(tmp_path / "Aspose.AI.LLM" / "models") == tmp_path
    with pytest.raises(ValueError, match=r"must end in Aspose\.AI\.LLM/models"):
        models.data_home_of(tmp_path / "models")


def test_what_the_ai_post_processors_need_is_looked_for_next_to_the_models(
    model_dir: Path,
) -> None:
    """File names only: the layout AsposeAI 26.10 looks in (placeholders, never loaded)."""
    assert models.ai_runtime(model_dir).runtimes == ()
    native = model_dir.parent / "runtimes" / "b6451" / "linux-x64-noavx" / "native"
    native.mkdir(parents=True)
    (native / "libllama.so").write_bytes(b"")
    (model_dir / "qwen2.5-3b-instruct-q4_k_m.gguf").write_bytes(b"")
    found = models.ai_runtime(model_dir)
    assert found.runtimes == (native,)
    assert found.models == (model_dir / "qwen2.5-3b-instruct-q4_k_m.gguf",)
    assert found.complete is found.libdl_loads


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


def test_a_file_another_process_is_writing_is_refused_and_one_it_reads_is_not(
    model_dir: Path,
) -> None:
    """A copy under way (here a child process holding the file open for writing) would
    lose its file to the unlink; a process only reading a model does not stop the prune."""
    (model_dir / "old_de_ocr_v1.bin").write_bytes(b"d")
    script = (
        "import sys; w = open(sys.argv[1], 'ab'); r = open(sys.argv[2], 'rb'); "
        "print('open', flush=True); sys.stdin.read()"
    )
    writing, reading = model_dir / "old_fr_ocr_v1.bin", model_dir / "old_de_ocr_v1.bin"
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(writing), str(reading)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "open\n"
        report = models.prune(models.merge(view_of(model_dir)), dry_run=False)
    finally:
        child.communicate("")
    assert names(report.deleted) == ["old_de_ocr_v1.bin"]
    assert [(r.model.name, r.reason) for r in report.refused] == [
        (
            "old_fr_ocr_v1.bin",
            "open for writing by a running process (a copy or download under way)",
        )
    ]
    assert sorted(os.listdir(model_dir)) == ["en_ocr_v1.bin", "old_fr_ocr_v1.bin"]
    # once the writer is done, the next prune takes it
    assert names(models.prune(models.merge(view_of(model_dir)), dry_run=False).deleted) == [
        "old_fr_ocr_v1.bin"
    ]


def test_symlink_escapes_are_refused(model_dir: Path, tmp_path: Path) -> None:
    (model_dir / "old_link.bin").symlink_to(tmp_path / "outside.bin")
    (model_dir / "old_dir").symlink_to(tmp_path, target_is_directory=True)
    inventory = models.merge(view_of(model_dir))
    report = models.prune(inventory, dry_run=False)
    assert names(report.deleted) == ["old_fr_ocr_v1.bin"]
    assert [(r.model.name, r.reason) for r in report.refused] == [
        ("old_dir", "a symlink"),
        ("old_link.bin", "a symlink"),
    ]
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
    report = models.prune(models.merge(view_of(model_dir, ("sub/old_x.bin",))), dry_run=False)
    assert [(r.model.name, r.reason) for r in report.refused] == [
        (
            "sub/old_x.bin",
            "outside the model directory (a folder on its way is a symlink or not a folder)",
        )
    ]
    assert (tmp_path / "real" / "old_x.bin").exists()


def test_an_empty_prefix_is_refused(model_dir: Path) -> None:
    with pytest.raises(ValueError, match="prefix"):
        models.prune(models.merge(view_of(model_dir)), prefix="")


def test_a_model_directory_aspose_cannot_use_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "list", "--model-dir", str(tmp_path / "models")]) == 2
    assert "a model directory must end in Aspose.AI.LLM/models" in capsys.readouterr().err


@pytest.mark.parametrize(
    "failure",
    [
        RuntimeError(
            "Proxy error(UnauthorizedAccessException): Access to the path '/m' is denied."
        ),
        ModuleNotFoundError("No module named 'aspose'"),
    ],
    ids=["aspose-raises", "no-aspose"],
)
def test_aspose_failing_to_answer_is_one_line_and_exit_4(
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failure: Exception,
) -> None:
    """Aspose's own exception from the child (its model directory unreadable to this user,
    the process out of descriptors) was a traceback with exit code 1."""

    def failing(*args: Any, timeout: float) -> Any:
        raise failure

    monkeypatch.setattr(models, "run_in_child", failing)
    for command in ("list", "audit", "prune"):
        assert main(["models", command, "--model-dir", str(model_dir)]) == 4
        err = capsys.readouterr().err
        assert err.startswith(f"ocrpool models: cannot ask Aspose: {type(failure).__name__}: ")
        assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_some_seconds_is_a_usage_error(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["models", "list", "--timeout", timeout])
    assert stopped.value.code == 2
    assert "--timeout" in capsys.readouterr().err


@pytest.mark.aspose
def test_cli_against_aspose(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "path", "--model-dir", str(model_dir)]) == 0
    out, err = capsys.readouterr()
    # No note on stderr: Aspose's get_local_path() was model_dir as well.
    assert (out.strip(), err) == (str(model_dir), "")

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
    # With no data home (here: XDG_DATA_HOME names a missing folder, which .NET ignores, and
    # takes precedence over ~/.local/share), the model directory is under the working one.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path.parent / "missing"))
    monkeypatch.chdir(tmp_path)
    inventory = models.inventory()
    assert inventory.model_dir == tmp_path / "Aspose.AI.LLM" / "models"
    assert inventory.aspose_model_dir == inventory.model_dir
    assert inventory.models == ()
    assert os.listdir(tmp_path) == []  # asking Aspose left nothing behind


@pytest.mark.parametrize("linked", ["models", "Aspose.AI.LLM"])
def test_a_symlinked_model_directory_is_refused(tmp_path: Path, linked: str) -> None:
    """The models folder, or Aspose.AI.LLM, a symlink: nothing in its target is touched."""
    real = tmp_path / "real" / "Aspose.AI.LLM" / "models"
    real.mkdir(parents=True)
    (real / "old_x.bin").write_bytes(b"x")
    model_dir = tmp_path / "home" / "Aspose.AI.LLM" / "models"
    link = model_dir if linked == "models" else model_dir.parent
    link.parent.mkdir(parents=True)
    link.symlink_to(real if linked == "models" else real.parent, target_is_directory=True)
    with pytest.raises(models.ModelDirUnusable, match=f"{link} is a symlink"):
        models.merge(view_of(model_dir))
    scanned = models.merge(view_of(real))
    inventory = dataclasses.replace(scanned, model_dir=model_dir)
    with pytest.raises(models.ModelDirUnusable):
        models.prune(inventory, dry_run=False)
    assert os.listdir(real) == ["old_x.bin"]


def test_a_folder_swapped_for_a_symlink_before_the_unlink_leads_nowhere(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of a check by path, then an unlink by path: the folder is replaced right
    before the unlink, and only the file that was checked goes."""
    (model_dir / "sub").mkdir()
    (model_dir / "sub" / "old_x.bin").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "old_x.bin").write_bytes(b"keep me")
    inventory = models.merge(view_of(model_dir))
    unlink = os.unlink

    def swap_then_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.fspath(path).endswith("old_x.bin"):
            (model_dir / "sub").rename(tmp_path / "moved")
            (model_dir / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", swap_then_unlink)
    report = models.prune(inventory, dry_run=False)
    monkeypatch.undo()
    assert (tmp_path / "outside" / "old_x.bin").read_bytes() == b"keep me"
    assert "sub/old_x.bin" in names(report.deleted)
    assert not (tmp_path / "moved" / "old_x.bin").exists()


def test_a_folder_swapped_for_a_symlink_after_the_scan_is_refused(
    model_dir: Path, tmp_path: Path
) -> None:
    (model_dir / "sub").mkdir()
    (model_dir / "sub" / "old_x.bin").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "old_x.bin").write_bytes(b"keep me")
    inventory = models.merge(view_of(model_dir))
    (model_dir / "sub").rename(tmp_path / "moved")
    (model_dir / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
    report = models.prune(inventory, dry_run=False)
    assert [r.model.name for r in report.refused] == ["sub/old_x.bin"]
    assert (tmp_path / "outside" / "old_x.bin").read_bytes() == b"keep me"


def test_folders_past_the_depth_limit_are_reported_not_walked(model_dir: Path) -> None:
    """About a thousand levels ended the command with a RecursionError (not built here:
    pytest's own clean-up of old temporary folders recurses as deep)."""
    deep = model_dir.joinpath(*["d"] * (models.MAX_DEPTH + 5))
    deep.mkdir(parents=True)
    (deep / "old_x.bin").write_bytes(b"x")
    inventory = models.merge(view_of(model_dir))
    assert "old_fr_ocr_v1.bin" in names(inventory.models)
    below = "/".join(["d"] * (models.MAX_DEPTH + 1))
    assert [(u.name, u.reason) for u in inventory.unreadable] == [
        (below, f"more than {models.MAX_DEPTH} folders deep: not listed")
    ]


def test_a_file_vanishing_during_the_scan_is_reported(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scandir = os.scandir

    def listed_then_vanished(path: Any) -> Any:
        with scandir(path) as entries:
            listing = list(entries)
        os.unlink(model_dir / "old_fr_ocr_v1.bin")
        return contextlib.nullcontext(iter(listing))

    monkeypatch.setattr(os, "scandir", listed_then_vanished)
    inventory = models.merge(view_of(model_dir))
    monkeypatch.undo()
    assert names(inventory.models) == ["en_ocr_v1.bin"]
    assert [(u.name, u.reason) for u in inventory.unreadable] == [
        ("old_fr_ocr_v1.bin", "No such file or directory")
    ]


def test_a_folder_changing_before_the_prune_is_reported_and_the_rest_goes(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (model_dir / "sub").mkdir()
    (model_dir / "sub" / "old_x.bin").write_bytes(b"x")
    (model_dir / "old_busy.bin").write_bytes(b"b")
    inventory = models.merge(view_of(model_dir))
    (model_dir / "sub" / "old_x.bin").unlink()
    (model_dir / "sub").rmdir()
    (model_dir / "sub").write_bytes(b"now a file")
    unlink = os.unlink

    def busy(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.fspath(path).endswith("old_busy.bin"):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", busy)
    report = models.prune(inventory, dry_run=False)
    monkeypatch.undo()
    assert names(report.deleted) == ["old_fr_ocr_v1.bin"]
    assert [(r.model.name, r.reason) for r in report.failed] == [
        ("old_busy.bin", "Device or resource busy")
    ]
    assert names(r.model for r in report.refused) == ["sub/old_x.bin"]


def test_symlinks_to_folders_are_listed_and_never_followed(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "old_y.bin").write_bytes(b"y")
    (model_dir / "old_dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    inventory = models.merge(view_of(model_dir))
    assert {m.name: m.kind for m in inventory.models}["old_dir"] is EntryKind.SYMLINK
    report = models.prune(inventory, dry_run=False)
    assert ("old_dir", "a symlink") in [(r.model.name, r.reason) for r in report.refused]
    assert (tmp_path / "elsewhere" / "old_y.bin").exists()


@pytest.mark.parametrize("keep", ["./old_fr_ocr_v1.bin", "sub/../old_fr_ocr_v1.bin", "ABS"])
def test_keep_names_are_normalised(model_dir: Path, keep: str) -> None:
    keep = str(model_dir / "old_fr_ocr_v1.bin") if keep == "ABS" else keep
    report = models.prune(models.merge(view_of(model_dir)), keep=[keep], dry_run=False)
    assert names(report.kept) == ["old_fr_ocr_v1.bin"]
    assert report.unknown_keep == ()
    assert (model_dir / "old_fr_ocr_v1.bin").exists()


def test_text_output_quotes_names_a_terminal_would_not_show_as_one_line(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newline in a name cannot pass for another model, and a byte that is not UTF-8
    cannot stop the listing; JSON says them exactly."""
    (model_dir / "two\nlines_ocr_v1.bin").write_bytes(b"n")
    (model_dir / os.fsdecode(b"bad\xff_ocr_v1.bin")).write_bytes(b"b")
    inventory = models.merge(view_of(model_dir))
    args = argparse.Namespace(json=False, prefix="en_")
    assert models_cli._list(inventory, args) == models_cli._audit(inventory, args) == 0
    out = capsys.readouterr().out
    assert "  'two\\nlines_ocr_v1.bin'\n" in out and "'bad\\udcff_ocr_v1.bin'" in out
    assert "two\nlines" not in out
    assert models_cli._audit(inventory, argparse.Namespace(json=True, prefix="en_")) == 0
    audited = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert {"two\nlines_ocr_v1.bin", os.fsdecode(b"bad\xff_ocr_v1.bin")} <= audited


def test_a_keep_name_that_matches_nothing_is_reported(model_dir: Path) -> None:
    report = models.prune(models.merge(view_of(model_dir)), keep=["old_typo.bin", "en_ocr_v1.bin"])
    assert report.unknown_keep == ("old_typo.bin",)


def test_a_model_directory_with_dot_dot_is_the_same_directory(
    model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "x").mkdir()
    roundabout = tmp_path / "x" / ".." / "Aspose.AI.LLM" / "models"
    assert models.data_home_of(roundabout) == tmp_path
    inventory = models.merge(view_of(model_dir, ("en_ocr_v1.bin",)), roundabout)
    assert inventory.model_dir == inventory.aspose_model_dir == model_dir
    assert [m.name for m in inventory.models if m.listed_by_aspose] == ["en_ocr_v1.bin"]


def test_the_cli_warns_of_unknown_keep_names_and_refuses_a_symlinked_directory(
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Aspose's answer stood in for: the directory it would report is ``model_dir``."""
    monkeypatch.setattr(
        models, "inventory", lambda path, timeout: models.merge(view_of(model_dir), path)
    )
    prune = ["models", "prune", "--model-dir", str(model_dir), "--yes"]
    assert main([*prune, "--keep", "./old_fr_ocr_v1.bin", "--keep", "old_typo.bin"]) == 0
    out, err = capsys.readouterr()
    assert "old_fr_ocr_v1.bin  (--keep)" in out
    assert err == "ocrpool models prune: warning: --keep old_typo.bin matches no model\n"
    linked = tmp_path / "linked" / "Aspose.AI.LLM"
    linked.parent.mkdir()
    linked.symlink_to(model_dir.parent, target_is_directory=True)
    assert main(["models", "list", "--model-dir", str(linked / "models")]) == 2
    assert f"{linked} is a symlink" in capsys.readouterr().err
    assert (model_dir / "old_fr_ocr_v1.bin").exists()
