"""Where a run may write, and making sure only one run writes there at a time."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterable

from ocrpool.batch.errors import OutputFailed, OutputLocked, OutputNotAFile, OutputRefused
from ocrpool.batch.scan import glob_root, is_pattern
from ocrpool.formats import sniff_file


def check_output(out: str, arguments: Iterable[str], *, allow_inside_input: bool) -> None:
    """Refuse an output that is an input, or (unless allowed) lies inside an input folder.

    Paths are compared after resolving symlinks. A glob pattern counts as the folder before
    its first wildcard. Inputs read from a list are not known in advance; the scan passes
    over the output itself, and an output is never an image.
    """
    target = os.path.realpath(out)
    for argument in arguments:
        root = glob_root(argument) if is_pattern(argument) else argument
        real = os.path.realpath(root)
        if target == real and not os.path.isdir(real):
            raise OutputRefused(f"refusing to write {out}: it is an input (would overwrite it)")
        if os.path.isdir(real) and _within(target, real) and not allow_inside_input:
            raise OutputRefused(
                f"refusing to write {out} inside the input folder {root}: "
                "a later run would scan it; choose another place or pass --allow-out-inside-input"
            )
    try:
        image = os.path.isfile(out) and sniff_file(out) is not None
    except OSError as exc:
        raise OutputRefused(f"cannot open {out}: {exc.strerror or exc}") from None
    if image:
        raise OutputRefused(f"refusing to write {out}: it is an image or PDF (an input?)")


def mirror_path(folder: str, source: str, suffix: str) -> str:
    """Where a file made from the input at ``source`` (absolute) goes under ``folder``:
    ``/data/scans/a.png`` -> ``folder/data/scans/a.png<suffix>``."""
    return os.path.join(folder, source.lstrip(os.sep) + suffix)


def make_parents(folder: str, target: str) -> None:
    """Create the folders from ``folder`` down to ``target`` (a ``mirror_path``), never
    through a symlink: a link inside the output folder, planted or left by another
    program, would lead the write outside it. ``OSError`` names the link (``ELOOP``) or
    the file in the way (``ENOTDIR``)."""
    os.makedirs(folder, exist_ok=True)
    current = folder
    for part in os.path.relpath(os.path.dirname(target), folder).split(os.sep):
        if part == os.curdir:
            continue
        current = os.path.join(current, part)
        try:
            os.mkdir(current)
        except FileExistsError:
            if os.path.islink(current):
                raise OSError(
                    errno.ELOOP, f"{current} is a symlink; nothing is written outside {folder}"
                ) from None
            if not os.path.isdir(current):
                raise OSError(errno.ENOTDIR, f"{current} is a file, not a folder") from None


def own_paths(out: str, suffixes: Iterable[str] = ()) -> frozenset[str]:
    """The absolute paths, symlinks kept and resolved, of an output (a file, with the given
    sidecar suffixes, or a folder) that a scan passes over."""
    base = os.path.abspath(out)
    real = os.path.realpath(out)
    return frozenset(path + suffix for path in (base, real) for suffix in ("", *suffixes))


def under_any(paths: frozenset[str]) -> Callable[[str], bool]:
    """Tells whether a path is one of ``paths`` or lies below one (an output folder's files)."""
    folders = tuple(path.rstrip(os.sep) + os.sep for path in paths)
    return lambda path: path in paths or path.startswith(folders)


_KINDS = {stat.S_IFIFO: "FIFO", stat.S_IFCHR: "character device", stat.S_IFBLK: "block device"}
"""What an output file that opens may be instead of a regular file (a folder or a socket
does not open for writing)."""


def open_output(path: str, *, append: bool = False) -> int:
    """Open (or create) the output file ``path`` for reading and writing, and lock it.

    Only a regular file can be read back, resumed and synced: a FIFO or a device is
    refused before the run starts. ``O_NONBLOCK`` keeps the open itself from waiting for
    a FIFO's other end (or a terminal's carrier).
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags | (os.O_APPEND if append else 0), 0o666)
    except OSError as exc:
        raise OutputRefused(f"cannot open {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _KINDS.get(stat.S_IFMT(mode), "special file")
        raise OutputNotAFile(
            f"refusing to write {path}: it is a {kind}, not a regular file "
            "(--out - writes to standard output)",
            path=path,
            kind=kind,
        )
    os.set_blocking(fd, True)
    lock_output(fd, path)
    return fd


def check_side_files(path: str, suffixes: Iterable[str]) -> None:
    """``OutputNotAFile`` when a file the output keeps beside it (SQLite's ``-wal``) is
    there and not a regular file: SQLite would delete a FIFO or write into a device."""
    for suffix in suffixes:
        try:
            mode = os.stat(path + suffix).st_mode
        except OSError:
            continue
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "special file")
            raise OutputNotAFile(
                f"refusing to write {path}: its side file {path + suffix} is a {kind}, "
                "not a regular file",
                path=path + suffix,
                kind=kind,
            )


def check_not_deleted(fd: int, path: str) -> None:
    """Raise ``OutputFailed`` when the open output ``fd`` no longer has a name: deleted
    (or replaced by another file) while the run writes it, its records would go with the
    last descriptor, while the run reported them done; and another run could create,
    lock and write a new file of the same name beside this one."""
    try:
        info = os.fstat(fd)
    except OSError as exc:
        raise OutputFailed.of(path, exc) from None
    if info.st_nlink == 0 and not _names(path, info):
        reason = "it was deleted or replaced during the run, with the records written to it"
        raise OutputFailed(f"cannot write {path}: {reason}", path=path, reason=reason)


def _names(path: str, info: os.stat_result) -> bool:
    """Whether ``path`` still leads to the file of ``info``: on a file system that counts
    no links (``st_nlink`` 0 for every file) a file is not deleted while it has its name."""
    try:
        named = os.stat(path)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (info.st_dev, info.st_ino)


def remove_own(path: str, fd: int) -> bool:
    """Unlink ``path`` if it still names the open file ``fd``; whether it did. A file
    made in its place since (ours deleted, and another run's created) is left alone."""
    try:
        if not _names(path, os.fstat(fd)):
            return False
        os.unlink(path)
    except OSError:
        return False
    return True


def lock_output(fd: int, path: str) -> None:
    """Take an exclusive lock on the open output, or raise ``OutputLocked``.

    ``flock`` locks are separate from the POSIX locks SQLite uses, and the kernel drops them
    when the process dies, so a killed run never leaves a stale lock behind.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputLocked(f"another ocrpool run is writing {path}") from None


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
