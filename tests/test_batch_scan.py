"""Input discovery: folders, globs, lists, symlinks, and streaming (``ocrpool.batch.scan``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from ocrpool.batch.scan import Discovery, Found, Skipped, SkipReason, scan_arguments, scan_list


def _tree(root: Path) -> None:
    for name in ("a.png", "sub/b.png", "sub/deeper/c.png", "name with spaces.png", "ü.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def _found(items: Iterable[Discovery]) -> set[str]:
    return {item.path for item in items if isinstance(item, Found)}


def test_a_folder_is_walked_recursively_with_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    found = _found(scan_arguments(["."]))
    assert found == {
        str(tmp_path / name)
        for name in ("a.png", "sub/b.png", "sub/deeper/c.png", "name with spaces.png", "ü.png")
    }


def test_the_walk_streams(tmp_path: Path) -> None:
    """The first file comes out before the rest of the tree has been listed."""
    _tree(tmp_path)
    walk = scan_arguments([str(tmp_path)])
    first = next(walk)
    (tmp_path / "sub" / "late.png").write_bytes(b"x")  # the walk has not reached sub/ yet
    assert isinstance(first, Found)
    assert str(tmp_path / "sub" / "late.png") in _found(walk)


def test_glob_patterns_expand_and_recurse(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert _found(scan_arguments([str(tmp_path / "*.png")])) == {
        str(tmp_path / "a.png"),
        str(tmp_path / "name with spaces.png"),
        str(tmp_path / "ü.png"),
    }
    assert str(tmp_path / "sub/deeper/c.png") in _found(scan_arguments([f"{tmp_path}/**/c.png"]))
    assert _found(scan_arguments([str(tmp_path / "s*")])) == {
        str(tmp_path / "sub/b.png"),
        str(tmp_path / "sub/deeper/c.png"),
    }


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("**/*.png", ["a.png", "name with spaces.png", "ü.png", "sub/b.png", "sub/deeper/c.png"]),
        ("**", ["a.png", "name with spaces.png", "ü.png", "sub/b.png", "sub/deeper/c.png"]),
        ("**/deeper", ["sub/deeper/c.png"]),
        ("s*/**/c.png", ["sub/deeper/c.png"]),
    ],
)
def test_a_recursive_glob_lists_each_file_once_through_symlink_loops(
    tmp_path: Path, pattern: str, expected: list[str]
) -> None:
    """``glob.iglob`` gave ~40 copies of each file past ``loop -> .`` and never ended with
    a second loop; the pattern's folder is walked as a folder input is."""
    _tree(tmp_path)
    (tmp_path / "loop").symlink_to(".")
    (tmp_path / "sub" / "deeper" / "up").symlink_to("../..")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.png").write_bytes(b"x")
    found = [item.path for item in scan_arguments([f"{tmp_path}/{pattern}"])]
    files = [path for path in found if Path(path).is_file()]
    assert sorted(files) == sorted(str(tmp_path / name) for name in expected)


def test_an_existing_name_with_wildcards_is_taken_literally(tmp_path: Path) -> None:
    (tmp_path / "[draft].png").write_bytes(b"x")
    assert _found(scan_arguments([str(tmp_path / "[draft].png")])) == {
        str(tmp_path / "[draft].png")
    }


def test_a_list_gives_one_path_per_line(tmp_path: Path) -> None:
    _tree(tmp_path)
    lines = [f"{tmp_path}/a.png\n", "\n", f"{tmp_path}/sub\r\n", f"{tmp_path}/*.png\n"]
    assert _found(scan_list(lines)) == {
        str(tmp_path / "a.png"),
        str(tmp_path / "sub/b.png"),
        str(tmp_path / "sub/deeper/c.png"),
        str(tmp_path / "*.png"),  # literal: fails later as a missing file
    }


def test_symlinked_folders_are_followed_but_loops_are_skipped(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "sub" / "back").symlink_to(tmp_path)
    (tmp_path / "self").symlink_to(".")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "e.png").write_bytes(b"x")
    (tmp_path / "sub" / "linked").symlink_to(tmp_path / "elsewhere")
    items = list(scan_arguments([str(tmp_path)]))
    loops = {item.path for item in items if isinstance(item, Skipped)}
    assert loops == {str(tmp_path / "sub/back"), str(tmp_path / "self")}
    assert all(
        item.reason is SkipReason.SYMLINK_LOOP for item in items if isinstance(item, Skipped)
    )
    assert str(tmp_path / "sub/linked/e.png") in _found(items)


LOOPS = {"up", "top", "by-name"}


@pytest.mark.parametrize(("pattern", "loops"), [("", LOOPS), ("/**", LOOPS), ("/**/*.png", set())])
def test_links_to_the_starts_own_ancestors_are_loops(
    tmp_path: Path, pattern: str, loops: set[str]
) -> None:
    """Only loops below the start were caught: ``in/up -> ..`` and ``in/top -> ../..``
    walked the folders above ``in``, and ``a/top.png`` came out twice. The start's
    ancestors count by the name it is given too (``named/a`` is a symlink to ``a``); a
    pattern lists the loops it matches."""
    real = tmp_path / "a" / "in"
    real.mkdir(parents=True)
    (real / "x.png").write_bytes(b"x")
    (tmp_path / "a" / "top.png").write_bytes(b"x")
    (tmp_path / "named").mkdir()
    (tmp_path / "named" / "n.png").write_bytes(b"x")
    (tmp_path / "named" / "a").symlink_to(tmp_path / "a")
    (real / "up").symlink_to("..")
    (real / "top").symlink_to("../..")
    (real / "by-name").symlink_to(tmp_path / "named")
    start = tmp_path / "named" / "a" / "in"
    items = list(scan_arguments([f"{start}{pattern}"]))
    assert [item.path for item in items if isinstance(item, Found)] == [str(start / "x.png")]
    assert {(item.path, item.reason) for item in items if isinstance(item, Skipped)} == {
        (str(start / name), SkipReason.SYMLINK_LOOP) for name in loops
    }


def test_files_that_cannot_be_stat_ed_still_come_out(tmp_path: Path) -> None:
    (tmp_path / "broken.png").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    assert _found(scan_arguments([str(tmp_path)])) == {
        str(tmp_path / "broken.png"),
        str(tmp_path / "loop.png"),
    }


def test_excluded_paths_are_passed_over_silently(tmp_path: Path) -> None:
    _tree(tmp_path)
    excluded = {str(tmp_path / "a.png"), str(tmp_path / "sub")}
    assert _found(scan_arguments([str(tmp_path)], excluded.__contains__)) == {
        str(tmp_path / "name with spaces.png"),
        str(tmp_path / "ü.png"),
    }


def test_a_line_holding_a_nul_is_skipped_not_opened(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    found = list(scan_list([f"{tmp_path}/a\0.png\n{tmp_path}/a.png\n"]))
    assert found == [
        Skipped(f"{tmp_path}/a\0.png", SkipReason.NOT_A_FILE, "a path cannot hold a NUL character"),
        Found(str(tmp_path / "a.png")),
    ]


def test_a_nul_separated_list_keeps_newlines_in_names(tmp_path: Path) -> None:
    for name in ("new\nline.png", "tail\r\n", " space.png"):
        (tmp_path / name).write_bytes(b"x")
    text = "".join(f"{tmp_path / name}\0" for name in ("new\nline.png", "tail\r\n", " space.png"))
    chunks = [text[i : i + 7] for i in range(0, len(text), 7)]  # separators split anywhere
    assert _found(scan_list([*chunks, "\0"], separator="\0")) == {
        str(tmp_path / "new\nline.png"),
        str(tmp_path / "tail\r\n"),
        str(tmp_path / " space.png"),
    }
