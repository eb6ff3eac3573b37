"""Find the files to OCR: files, folders (walked recursively), glob patterns and path lists.

Everything is a generator: a folder is listed one entry at a time and OCR starts while the
walk goes on. Memory grows with the depth of the tree, never with the number of files.
Paths come out absolute (``os.path.abspath``: normalised, symlinks kept as named), which is
what records and resume compare.
"""

from __future__ import annotations

import codecs
import enum
import fnmatch
import glob
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO


class SkipReason(str, enum.Enum):
    NOT_AN_IMAGE = "not an image"
    """The content is none of the supported formats, and the name does not claim one."""
    NOT_A_FILE = "not a regular file"
    """A FIFO, socket or device: never opened, so a FIFO cannot block the scan."""
    SYMLINK_LOOP = "symlink loop"
    """A symlinked folder that points back to a folder being walked, or to the walk's
    start or a folder above it."""
    UNREADABLE_FOLDER = "unreadable folder"


@dataclass(frozen=True)
class Found:
    """A path that is not a folder: an input candidate (it may still be unreadable or broken)."""

    path: str


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: SkipReason
    detail: str = ""

    @property
    def message(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


Discovery = Found | Skipped
Exclude = Callable[[str], bool]
"""Tells the scan to pass over a path silently (the run's own output and what is under it)."""


def _never(path: str) -> bool:
    return False


def is_pattern(argument: str) -> bool:
    """A glob pattern: has wildcards and is not the name of an existing path."""
    return not os.path.lexists(argument) and glob.has_magic(argument)


def scan_arguments(arguments: Iterable[str], exclude: Exclude = _never) -> Iterator[Discovery]:
    """Expand command-line inputs: an existing path as is, otherwise a glob pattern
    (``**`` recurses); a path that is neither comes out as ``Found`` and fails later."""
    for argument in arguments:
        if not is_pattern(argument):
            yield from scan_path(argument, exclude)
        elif RECURSIVE in argument.split(os.sep):
            yield from _scan_recursive(argument, exclude)
        else:
            for match in glob.iglob(argument):
                yield from scan_path(match, exclude)


RECURSIVE = "**"


def glob_root(pattern: str) -> str:
    """The folder a pattern starts from: its part before the first wildcard."""
    parts: list[str] = []
    for part in pattern.split(os.sep):
        if glob.has_magic(part):
            break
        parts.append(part)
    return os.sep.join(parts) or os.curdir


def _scan_recursive(pattern: str, exclude: Exclude) -> Iterator[Discovery]:
    """What ``glob.iglob(pattern, recursive=True)`` and a walk of each folder it matches
    give, each file once: ``iglob`` follows a symlink back to an ancestor forever, so the
    folder the pattern starts from is walked as a folder input is (loops skipped) and each
    file is kept when it, or a folder above it, matches the pattern."""
    root = glob_root(pattern)
    wanted = pattern.split(os.sep)[len(root.split(os.sep)) if root != os.curdir else 0 :]
    start = os.path.abspath(root)
    if exclude(start) or not os.path.isdir(start):
        return
    for item in _walk(start, exclude):
        parts = os.path.relpath(item.path, start).split(os.sep)
        if any(_matches(parts[:depth], wanted) for depth in range(1, len(parts) + 1)):
            yield item


def _matches(parts: list[str], pattern: list[str]) -> bool:
    """Path parts against pattern parts as ``glob`` matches them: ``**`` stands for any
    number of folders, and a wildcard matches a hidden name only when it starts with a dot."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == RECURSIVE:
        return any(
            _matches(parts[skip:], rest)
            for skip in range(len(parts) + 1)
            if not any(_hidden(part, head) for part in parts[:skip])
        )
    return (
        bool(parts)
        and not _hidden(parts[0], head)
        and fnmatch.fnmatchcase(parts[0], head)
        and _matches(parts[1:], rest)
    )


def _hidden(name: str, pattern: str) -> bool:
    return name.startswith(".") and not pattern.startswith(".")


def scan_list(
    chunks: Iterable[str], exclude: Exclude = _never, *, separator: str = "\n"
) -> Iterator[Discovery]:
    """Paths one per line, taken literally (no glob expansion), from text read in chunks
    of any size; blank lines are ignored, and so is a ``\\r`` before a newline. With
    another ``separator`` (``"\\0"`` for ``find -print0``) the text is split at it alone,
    so a name may hold any other character, newlines included."""
    for path in _split(chunks, separator):
        if separator == "\n":
            path = path.rstrip("\r")
        if path:
            yield from scan_path(path, exclude)


LIST_CHUNK = 65536


def read_list(stream: BinaryIO) -> Iterator[str]:
    """The text of a list of paths as it comes (one ``read`` each: a pipe gives what it
    has), decoded as the names are: UTF-8, other bytes kept as surrogates."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    while chunk := stream.read(LIST_CHUNK):
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _split(chunks: Iterable[str], separator: str) -> Iterator[str]:
    """The pieces between separators of text read in chunks of any size."""
    pending = ""
    for chunk in chunks:
        *complete, pending = (pending + chunk).split(separator)
        yield from complete
    yield pending


def scan_path(path: str, exclude: Exclude = _never) -> Iterator[Discovery]:
    """``path`` itself if it is not a folder, else every file below it; nothing when it
    is excluded under its name or, through symlinks, under the path it resolves to."""
    if "\0" in path:  # a list's line, not a name: no system call takes it
        yield Skipped(path, SkipReason.NOT_A_FILE, "a path cannot hold a NUL character")
        return
    path = os.path.abspath(path)
    if exclude(path) or exclude(os.path.realpath(path)):
        return
    if os.path.isdir(path):
        yield from _walk(path, exclude)
    else:
        yield Found(path)


def _walk(root: str, exclude: Exclude) -> Iterator[Discovery]:
    """Depth-first, following symlinked folders unless they lead back to an ancestor:
    one of the folders walked down to, ``root`` or a folder above it."""
    pending: list[tuple[str, tuple[tuple[int, int], ...]]] = [(root, _ancestry(root))]
    while pending:
        folder, ancestors = pending.pop()
        subfolders: list[str] = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if exclude(entry.path):
                        continue
                    if _is_dir(entry):
                        if not exclude(os.path.realpath(entry.path)):  # a link to the output
                            subfolders.append(entry.path)
                    else:
                        yield Found(entry.path)
        except OSError as exc:
            yield Skipped(folder, SkipReason.UNREADABLE_FOLDER, exc.strerror or str(exc))
            continue
        for subfolder in sorted(subfolders, reverse=True):
            try:
                identity = _identity(subfolder)
            except OSError as exc:
                yield Skipped(subfolder, SkipReason.UNREADABLE_FOLDER, exc.strerror or str(exc))
                continue
            if identity in ancestors:
                target = os.readlink(subfolder) if os.path.islink(subfolder) else subfolder
                yield Skipped(subfolder, SkipReason.SYMLINK_LOOP, f"leads back to {target}")
            else:
                pending.append((subfolder, (*ancestors, identity)))


def _ancestry(root: str) -> tuple[tuple[int, int], ...]:
    """``root`` and every folder above it, by the name given and resolved: a link to one
    of them would walk the start again, or folders outside it that lead back into it."""
    identities: dict[tuple[int, int], None] = {}
    for path in (root, os.path.realpath(root)):
        while True:
            identities[_identity(path)] = None
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
    return tuple(identities)


def _identity(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # e.g. a symlink loop: reported when the file itself is examined
        return False
