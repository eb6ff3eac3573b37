"""What ``ocrpool`` must never do: write outside its output location, follow a symlink
out of the model directory when pruning, overwrite an input, ignore the user's umask, or
hand a license path or an option value to a shell."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ocrpool.engines.aspose import models
from ocrpool.engines.aspose.models import AsposeView
from ocrpool.error_codes import ExitCode

from .runs import OCRPOOL, TAG, make_images, processes_left

FAKE = ["--engine", "fake", "--workers", "1", "--spares", "0", "--quiet"]
FORMATS = {"jsonl": "results.jsonl", "sqlite": "results.db", "txt": "texts"}
METACHARACTERS = "$(touch pwned-1); touch pwned-2 `touch pwned-3` | touch pwned-4 & > pwned-5"


def tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every file below ``root`` (not following links): its mode and a digest."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            info = path.lstat()
            digest = "link" if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path)] = (info.st_mode, digest)
    return found


def ocrpool_run(
    args: list[str], cwd: Path, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    tag = uuid.uuid4().hex
    env = {**os.environ, TAG: tag, "TMPDIR": str(cwd / "tmp"), "HOME": str(cwd / "home")}
    (cwd / "tmp").mkdir(exist_ok=True)
    (cwd / "home").mkdir(exist_ok=True)
    done = subprocess.run(
        [OCRPOOL, "run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec,
    )
    assert processes_left(tag) == []
    return done


@pytest.mark.parametrize("fmt", ["sqlite", "txt"])  # txt's records are the JSONL sink
def test_a_run_writes_only_its_output_and_never_touches_an_input(tmp_path: Path, fmt: str) -> None:
    inputs = tmp_path / "inputs"
    make_images(inputs, 5)
    (inputs / "..png").write_bytes((inputs / "page 00000.png").read_bytes())
    (inputs / "linked").symlink_to(inputs, target_is_directory=True)
    out = tmp_path / "out" / FORMATS[fmt]
    (tmp_path / "out").mkdir()
    before = tree(tmp_path)
    args = [str(inputs), "--out", str(out), "--format", fmt, "--export", "pdf,txt", *FAKE]
    for _ in range(2):  # the second run resumes: it writes nothing new
        assert ocrpool_run(args, tmp_path).returncode == ExitCode.OK
    after = tree(tmp_path)
    changed = {path for path in after if before.get(path) != after[path]}
    allowed = (str(out), str(tmp_path / "out" / (Path(FORMATS[fmt]).stem + "-exports")))
    assert changed and all(path.startswith(allowed) for path in changed), changed
    assert {p: after[p] for p in before} == before  # no input (or anything else) changed
    assert list((tmp_path / "tmp").iterdir()) == []  # the pool's logs went with it


@pytest.mark.parametrize("where", ["texts", "exports"])
def test_a_symlink_inside_the_output_folder_never_leads_a_write_outside(
    tmp_path: Path, where: str
) -> None:
    inputs = tmp_path / "inputs"
    (page,) = make_images(inputs, 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / where
    folder.mkdir()
    top = Path(page).parts[1]  # the first folder of the mirrored absolute path
    (folder / top).symlink_to(outside, target_is_directory=True)
    if where == "texts":
        output = ["--out", str(folder), "--format", "txt"]
    else:
        output = [
            "--out",
            str(tmp_path / "r.jsonl"),
            "--export",
            "txt",
            "--export-dir",
            str(folder),
        ]
    done = ocrpool_run([str(inputs), *output, *FAKE], tmp_path)
    assert done.returncode == ExitCode.OUTPUT_FAILED
    assert "is a symlink; nothing is written outside" in done.stderr
    assert list(outside.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize(("umask", "fmt"), [(0o002, "sqlite"), (0o002, "txt")])
def test_output_files_get_the_users_umask(tmp_path: Path, umask: int, fmt: str) -> None:
    inputs = tmp_path / "inputs"
    make_images(inputs, 2)
    out = tmp_path / "out"
    out.mkdir()
    args = [str(inputs), "--out", str(out / FORMATS[fmt]), "--format", fmt, "--export", "txt"]
    done = ocrpool_run([*args, *FAKE], tmp_path, preexec=lambda: _set_umask(umask))
    assert done.returncode == ExitCode.OK, done.stderr
    for folder, folders, files in os.walk(out):
        for name in files:
            assert stat.S_IMODE(os.stat(Path(folder, name)).st_mode) == 0o666 & ~umask, name
        for name in folders:
            assert stat.S_IMODE(os.stat(Path(folder, name)).st_mode) == 0o777 & ~umask, name


def _set_umask(umask: int) -> None:
    os.umask(umask)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "engine", "code"),
    [
        (["--license", METACHARACTERS], "aspose", ExitCode.ENGINE_UNAVAILABLE),
        (
            ["--spellcheck", "eng", "--spellcheck-dictionary", METACHARACTERS],
            "aspose",
            ExitCode.USAGE,
        ),
        (["--engine-option", f"exports={METACHARACTERS}"], "fake", ExitCode.USAGE),
    ],
)
def test_a_value_with_shell_metacharacters_is_data_never_a_command(
    tmp_path: Path, option: list[str], engine: str, code: ExitCode
) -> None:
    (page,) = make_images(tmp_path / "inputs", 1)
    args = [page, "--out", str(tmp_path / "r.jsonl"), *option, "--engine", engine, "--quiet"]
    args += ["--workers", "1", "--spares", "0"]
    done = ocrpool_run(args, tmp_path)
    # The engine refuses the value, as a value, at its start: a license it cannot read (4),
    # an option value it does not take (2)
    assert done.returncode == code
    assert METACHARACTERS in done.stderr
    assert not list(tmp_path.rglob("pwned*"))


OUTSIDE_NAMES = st.lists(
    st.tuples(
        st.sampled_from(["old_a.bin", "old_b.gguf", "sub/old_c.bin", "current.bin"]),
        st.sampled_from(["file", "link-to-outside-file", "link-to-outside-dir"]),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda item: item[0],
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(OUTSIDE_NAMES, st.booleans())
def test_prune_never_follows_a_symlink_out_of_the_model_directory(
    tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[str, str]], linked_sub: bool
) -> None:
    base = tmp_path_factory.mktemp("prune")
    model_dir = base / "Aspose.AI.LLM" / "models"
    outside = base / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "old_secret.bin").write_bytes(b"keep me")
    (outside / "sub" / "old_c.bin").write_bytes(b"keep me too")
    model_dir.mkdir(parents=True)
    if linked_sub:
        (model_dir / "sub").symlink_to(outside / "sub", target_is_directory=True)
    for name, kind in entries:
        path = model_dir / name
        if path.parent.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            path.write_bytes(b"model")
        elif kind == "link-to-outside-file":
            path.symlink_to(outside / "old_secret.bin")
        else:
            path.symlink_to(outside, target_is_directory=True)
    before = tree(outside)
    view = AsposeView(str(model_dir), (), str(base / "aspose_data"), ())
    report = models.prune(models.merge(view), dry_run=False)
    assert tree(outside) == before
    for deleted in report.deleted:
        assert not deleted.path.exists()
        assert Path(os.path.realpath(deleted.path.parent)).is_relative_to(model_dir)
