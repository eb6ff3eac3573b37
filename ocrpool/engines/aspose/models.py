"""Model maintenance: list, locate, audit and prune the files Aspose keeps on disk.

Aspose's view (its AI model directory, what ``AsposeAI.list_local`` recognises, and
the OCR resources of ``Resources.list_local``) is taken in a throwaway child that
frees the engine and exits before ``inventory`` returns. So the calling process never
holds a model open, and ``prune``, which needs an ``Inventory``, can only run after
that child is gone.

Aspose's model directory is ``$XDG_DATA_HOME/Aspose.AI.LLM/models`` (.NET's local
application data folder): with no such folder (no ``XDG_DATA_HOME``, no
``~/.local/share``) it is ``Aspose.AI.LLM/models`` under the working directory. So a
``model_dir`` of the form ``<data home>/Aspose.AI.LLM/models`` is handed to the child as
``XDG_DATA_HOME=<data home>``, and what Aspose sees moves with it (``AsposeAI``'s own
argument is only a debug flag). The llama.cpp runtimes Aspose's AI post-processors load
live next to the models, in ``Aspose.AI.LLM/runtimes/``.

The model directory is read and pruned through folder descriptors, each opened without
following a symlink, and a file is deleted by name in its own folder's descriptor: no path
is looked up twice, so swapping a folder for a symlink between the check and the deletion
leads nowhere. The data home may be a symlink; the folders below it, up to ``models``,
may not (``ModelDirUnusable``).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import enum
import errno
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath

from ocrpool.engines.aspose.child import run_in_child
from ocrpool.engines.aspose.runtime import prepare_process
from ocrpool.errors import EngineError, OcrPoolError

DEFAULT_OLD_PREFIX = "old_"
DEFAULT_TIMEOUT_S = 60.0
RESOURCE_SUFFIX = ".ocr"
DEFAULT_RESOURCE_DIR = "aspose_data"
"""Where Aspose.OCR keeps downloaded resources, relative to the working directory."""
DATA_HOME_VARIABLE = "XDG_DATA_HOME"
MODEL_SUBDIR = Path("Aspose.AI.LLM", "models")
"""Aspose's model directory, relative to its data home."""
LLAMA_RUNTIMES = "runtimes/*/*/native/libllama.so*"
"""The llama.cpp libraries AsposeAI loads, relative to ``Aspose.AI.LLM``: one folder per
llama.cpp release tag and platform (Aspose.OCR 26.10 asks for ``b6451`` and, e.g.,
``linux-x64-noavx``, ``linux-x64-avx2`` or ``linux-x64-cuda13.0``)."""
LIBDL = "libdl.so"
"""The name AsposeAI asks the dynamic loader for (Debian 12 ships only libdl.so.2)."""
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOT_A_FOLDER = frozenset({errno.ENOTDIR, errno.ELOOP})
"""What opening a symlink (Linux: ``ENOTDIR``) or a file with ``O_NOFOLLOW|O_DIRECTORY`` gives."""
_VANISHED = "no such file"
_BEING_WRITTEN = "open for writing by a running process (a copy or download under way)"
_THROUGH_A_LINK = "outside the model directory (a folder on its way is a symlink or not a folder)"


class ModelDirUnusable(OcrPoolError):
    """The model directory cannot be read or pruned safely: a symlink among its folders
    below the data home (what it points to is not the model directory's to delete), or
    the system would not open it. Nothing was touched."""

    path: str = ""
    reason: str = ""


class ModelStatus(str, enum.Enum):
    OLD = "OLD"
    CURRENT = "CURRENT"


class EntryKind(str, enum.Enum):
    FILE = "file"
    SYMLINK = "symlink"
    NOT_ON_DISK = "listed by Aspose, not a file here"


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """One entry of the model directory; ``name`` is relative to it."""

    name: str
    path: Path
    kind: EntryKind
    size_bytes: int | None
    listed_by_aspose: bool = False

    def status(self, old_prefix: str = DEFAULT_OLD_PREFIX) -> ModelStatus:
        old = Path(self.name).name.startswith(old_prefix)
        return ModelStatus.OLD if old else ModelStatus.CURRENT


@dataclasses.dataclass(frozen=True)
class Resource:
    """An Aspose.OCR resource (``<name>.ocr``) that ``Resources.list_local`` reports."""

    name: str
    path: Path
    size_bytes: int | None


@dataclasses.dataclass(frozen=True)
class Unreadable:
    """An entry the scan could not look at: it vanished, or the system refused."""

    name: str
    reason: str


@dataclasses.dataclass(frozen=True)
class AsposeView:
    """What the engine reports, taken in the child; paths are absolute."""

    model_dir: str
    listed_models: tuple[str, ...]
    resource_dir: str
    resources: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Inventory:
    model_dir: Path
    models: tuple[ModelFile, ...]
    resource_dir: Path
    resources: tuple[Resource, ...]
    aspose_model_dir: Path
    """Where Aspose itself looks: ``model_dir`` unless the data home of an overriding
    ``model_dir`` does not exist (Aspose then falls back to the working directory)."""
    unreadable: tuple[Unreadable, ...] = ()


@dataclasses.dataclass(frozen=True)
class AiRuntime:
    """What Aspose's AI post-processors need on this machine, and what is there."""

    libdl_loads: bool
    runtimes: tuple[Path, ...]
    models: tuple[Path, ...]

    @property
    def complete(self) -> bool:
        return self.libdl_loads and bool(self.runtimes) and bool(self.models)


@dataclasses.dataclass(frozen=True)
class Refusal:
    model: ModelFile
    reason: str


@dataclasses.dataclass(frozen=True)
class PruneReport:
    """``to_delete`` is the plan; ``deleted`` what was done (nothing on a dry run);
    ``refused`` what was not safe to delete (or was gone); ``failed`` what the system would
    not delete; ``unknown_keep`` the ``keep`` names that matched no model."""

    model_dir: Path
    prefix: str
    dry_run: bool
    to_delete: tuple[ModelFile, ...]
    deleted: tuple[ModelFile, ...]
    kept: tuple[ModelFile, ...]
    refused: tuple[Refusal, ...]
    failed: tuple[Refusal, ...]
    unknown_keep: tuple[str, ...]


def aspose_view(data_home: str | None = None) -> AsposeView:
    """Runs in the child: ask Aspose where its files are, then free it. ``data_home``
    becomes ``XDG_DATA_HOME``, before the .NET runtime reads its environment."""
    if data_home is not None:
        os.environ[DATA_HOME_VARIABLE] = data_home
    prepare_process()
    import aspose.ocr as ocr
    from aspose.ocr.ai import AsposeAI

    ocr.Logging.set_file_system(False)
    ai = AsposeAI(False)
    try:
        model_dir = os.path.abspath(ai.get_local_path())
        # list_local raises DirectoryNotFoundException when there is no directory yet, and
        # UnauthorizedAccessException for one this user cannot list (the scan tells).
        listable = os.path.isdir(model_dir) and os.access(model_dir, os.R_OK | os.X_OK)
        listed = tuple(str(name) for name in ai.list_local()) if listable else ()
        existed = os.path.isdir(DEFAULT_RESOURCE_DIR)
        resource_dir = os.path.abspath(ocr.Resources.get_local_path())
        resources = tuple(str(name) for name in ocr.Resources.list_local())
        if not existed and not resources:
            # Asking Aspose where its resources are creates that directory: tidy up.
            with contextlib.suppress(OSError):
                os.rmdir(resource_dir)
    finally:
        ai.free_resources()
    return AsposeView(model_dir, listed, resource_dir, resources)


def inventory(
    model_dir: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> Inventory:
    """Aspose's view, taken in a child that has exited, merged with the directory's files.

    ``model_dir`` (``<data home>/Aspose.AI.LLM/models``; ``ValueError`` otherwise) moves
    Aspose's model directory there. A directory that does not exist yet has no models (an
    empty inventory, no error). ``EngineError`` when Aspose fails to answer.
    """
    data_home = None if model_dir is None else str(data_home_of(model_dir))
    try:
        view: AsposeView = run_in_child(aspose_view, data_home, timeout=timeout)
    except (RuntimeError, ImportError, OSError) as exc:
        # Aspose's own failure (a .NET exception through its proxy), or no Aspose at all.
        raise EngineError(f"{type(exc).__name__}: {exc}") from None
    return merge(view, model_dir)


def data_home_of(model_dir: str | os.PathLike[str]) -> Path:
    """The ``XDG_DATA_HOME`` under which Aspose's model directory is ``model_dir``."""
    path = _absolute(model_dir)
    if path.parts[-len(MODEL_SUBDIR.parts) :] != MODEL_SUBDIR.parts:
        raise ValueError(
            f"{model_dir}: Aspose keeps its models in <data home>/{MODEL_SUBDIR} "
            f"(<data home> is ${DATA_HOME_VARIABLE}), so a model directory must end in "
            f"{MODEL_SUBDIR}, e.g. /data/{MODEL_SUBDIR}"
        )
    return path.parents[len(MODEL_SUBDIR.parts) - 1]


def merge(view: AsposeView, model_dir: str | os.PathLike[str] | None = None) -> Inventory:
    """The inventory of ``model_dir`` (default: Aspose's), given what Aspose reported."""
    root = _absolute(model_dir if model_dir is not None else view.model_dir)
    aspose_root = _absolute(view.model_dir)
    listed = view.listed_models if root == aspose_root else ()
    resource_dir = Path(view.resource_dir)
    resources = tuple(
        Resource(name, path, _size(path))
        for name in view.resources
        for path in [resource_dir / f"{name}{RESOURCE_SUFFIX}"]
    )
    found, unreadable = scan(root, listed)
    return Inventory(root, found, resource_dir, resources, aspose_root, unreadable)


def ai_runtime(model_dir: Path) -> AiRuntime:
    """What of the AI post-processors' needs is here, for the model directory Aspose uses.

    Looks only: AsposeAI itself would try to download what is missing.
    """
    try:
        ctypes.CDLL(LIBDL)
        libdl_loads = True
    except OSError:
        libdl_loads = False
    runtimes = tuple(sorted({path.parent for path in model_dir.parent.glob(LLAMA_RUNTIMES)}))
    models = tuple(sorted(model_dir.rglob("*.gguf"))) if model_dir.is_dir() else ()
    return AiRuntime(libdl_loads, runtimes, models)


def scan(
    root: Path, listed: Iterable[str] = ()
) -> tuple[tuple[ModelFile, ...], tuple[Unreadable, ...]]:
    """Every file and symlink under ``root`` (a symlink, to a folder too, is listed, never
    followed), plus what Aspose listed that is not among them, sorted by name; and what
    could not be read, so that one entry changing under the scan does not end it."""
    entries: dict[str, ModelFile] = {}
    unreadable: list[Unreadable] = []
    root_fd = _open_model_dir(root)
    if root_fd is not None:
        try:
            for entry in _walk(root_fd, root, ""):
                if isinstance(entry, Unreadable):
                    unreadable.append(entry)
                else:
                    entries[entry.name] = entry
        finally:
            os.close(root_fd)
    for item in listed:
        path = Path(item) if os.path.isabs(item) else root / item
        name = _relative_name(root, path) or item
        known = entries.get(name)
        entries[name] = (
            dataclasses.replace(known, listed_by_aspose=True)
            if known is not None
            else ModelFile(name, path, EntryKind.NOT_ON_DISK, None, listed_by_aspose=True)
        )
    return tuple(entries[name] for name in sorted(entries)), tuple(unreadable)


MAX_DEPTH = 64
"""Folders below the model directory that are listed: a model store is a few levels deep,
and each level walked holds a descriptor and a Python frame."""


def _walk(
    folder_fd: int, root: Path, prefix: str, depth: int = 0
) -> Iterator[ModelFile | Unreadable]:
    """The files and symlinks of the folder ``folder_fd`` (``prefix`` below ``root``) and
    of its subfolders, each opened from its parent's descriptor without following links;
    a folder past ``MAX_DEPTH`` is reported unreadable, not walked."""
    try:
        with os.scandir(folder_fd) as listing:
            found = list(listing)
    except OSError as exc:
        yield Unreadable(prefix.rstrip("/") or ".", _why(exc))
        return
    for entry in found:
        name = prefix + entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                if depth >= MAX_DEPTH:
                    yield Unreadable(name, f"more than {MAX_DEPTH} folders deep: not listed")
                    continue
                sub_fd = _open_folder([entry.name], folder_fd)
                try:
                    yield from _walk(sub_fd, root, f"{name}/", depth + 1)
                finally:
                    os.close(sub_fd)
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError as exc:
            yield Unreadable(name, _why(exc))
            continue
        if stat.S_ISLNK(info.st_mode):
            yield ModelFile(name, root / name, EntryKind.SYMLINK, None)
        elif stat.S_ISREG(info.st_mode):
            yield ModelFile(name, root / name, EntryKind.FILE, info.st_size)


def prune(
    inventory: Inventory,
    *,
    prefix: str = DEFAULT_OLD_PREFIX,
    keep: Iterable[str] = (),
    dry_run: bool = True,
) -> PruneReport:
    """Delete the OLD models (name starts with ``prefix``) of an inventory.

    Only regular files inside the model directory are deleted, each checked and deleted
    through its own folder's descriptor; symlinks (to folders too), anything reached
    through a symlinked folder and names with ``..`` are refused, and so are files a running
    process has open for writing when the prune starts. ``keep`` names (relative
    names, file names or paths; ``./name`` is ``name``) are never deleted. A dry run (the
    default) deletes nothing. An error on one file is reported and the others go on.
    """
    if not prefix or "/" in prefix:
        raise ValueError(f"prefix must be a non-empty file-name prefix, not {prefix!r}")
    wanted = {name: _keep_name(inventory.model_dir, name) for name in keep}
    whitelist = set(wanted.values())
    matched: set[str] = set()
    to_delete, deleted, kept, refused, failed = [], [], [], [], []
    root_fd = _open_model_dir(inventory.model_dir)
    try:
        writing = set() if root_fd is None else _open_for_writing(os.fstat(root_fd).st_dev)
        for model in inventory.models:
            hits = whitelist & {model.name, PurePosixPath(model.name).name}
            matched |= hits
            if model.status(prefix) is not ModelStatus.OLD:
                continue
            if hits:
                kept.append(model)
                continue
            try:
                reason = _delete(root_fd, model, dry_run, writing)
            except OSError as exc:
                to_delete.append(model)
                failed.append(Refusal(model, _why(exc)))
                continue
            if reason is not None:
                refused.append(Refusal(model, reason))
                continue
            to_delete.append(model)
            if not dry_run:
                deleted.append(model)
    finally:
        if root_fd is not None:
            os.close(root_fd)
    return PruneReport(
        inventory.model_dir,
        prefix,
        dry_run,
        tuple(to_delete),
        tuple(deleted),
        tuple(kept),
        tuple(refused),
        tuple(failed),
        tuple(given for given, name in wanted.items() if name not in matched),
    )


def _delete(
    root_fd: int | None, model: ModelFile, dry_run: bool, writing: set[tuple[int, int]]
) -> str | None:
    """Why ``model`` is not to be deleted, or ``None`` once it is (unless ``dry_run``).
    Raises the ``OSError`` of a deletion the system refused."""
    relative = PurePosixPath(model.name)
    if relative.is_absolute() or ".." in relative.parts:
        return "outside the model directory"
    if root_fd is None:
        return _VANISHED
    try:
        folder_fd = _open_folder(relative.parent.parts, root_fd)
    except FileNotFoundError:
        return _VANISHED
    except OSError as exc:
        if exc.errno in _NOT_A_FOLDER:
            return _THROUGH_A_LINK
        raise
    try:
        info = os.stat(relative.name, dir_fd=folder_fd, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            return "a symlink"
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if (info.st_dev, info.st_ino) in writing:
            return _BEING_WRITTEN
        if not dry_run:
            os.unlink(relative.name, dir_fd=folder_fd)
    except FileNotFoundError:
        return _VANISHED
    finally:
        os.close(folder_fd)
    return None


def _open_for_writing(device: int) -> set[tuple[int, int]]:
    """``(device, inode)`` of the regular files on ``device`` that a process this one may
    look at (all of them, for root) has open for writing: a copy or a download still under
    way, which deleting would lose. Linux's ``/proc``; elsewhere, nothing is known."""
    found: set[tuple[int, int]] = set()
    with contextlib.suppress(OSError), os.scandir("/proc") as processes:
        for process in processes:
            if process.name.isdigit():
                found |= _written_by(f"/proc/{process.name}", device)
    return found


def _written_by(process: str, device: int) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    try:
        descriptors = os.listdir(f"{process}/fd")
    except OSError:  # gone, or not ours to see
        return found
    for fd in descriptors:
        try:
            info = os.stat(f"{process}/fd/{fd}")  # the open file itself
            if info.st_dev != device or not stat.S_ISREG(info.st_mode):
                continue
            with open(f"{process}/fdinfo/{fd}") as fdinfo:
                flags = next(
                    int(line.split()[1], 8) for line in fdinfo if line.startswith("flags:")
                )
        except (OSError, StopIteration, ValueError, IndexError):
            continue
        if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
            found.add((info.st_dev, info.st_ino))
    return found


def _open_model_dir(root: Path) -> int | None:
    """A descriptor of ``root``, or ``None`` when it does not exist. The data home is
    followed if a symlink; the folders below it are not (``ModelDirUnusable``)."""
    try:
        home = data_home_of(root)
    except ValueError:
        home = root.parent
    inside = root.relative_to(home).parts
    try:
        home_fd = os.open(home, _FOLDER_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelDirUnusable(f"{root}: {_why(exc)}", path=str(root), reason=_why(exc)) from exc
    try:
        return _open_folder(inside, home_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        links = [path for path in _ancestors(home, inside) if path.is_symlink()]
        reason = _why(exc)
        if links and exc.errno in _NOT_A_FOLDER:
            reason = (
                f"{links[0]} is a symlink, and ocrpool models never works through one: pass "
                "the folder it leads to as --model-dir (it must end in "
                f"{MODEL_SUBDIR})"
            )
        raise ModelDirUnusable(f"{root}: {reason}", path=str(root), reason=reason) from exc
    finally:
        os.close(home_fd)


def _open_folder(parts: Sequence[str], folder_fd: int) -> int:
    """A new descriptor of the folder ``parts`` below ``folder_fd``, no part followed if it
    is a symlink (``OSError`` then, as for a part that is not a folder)."""
    fd = os.open(".", _FOLDER_FLAGS, dir_fd=folder_fd)
    try:
        for part in parts:
            fd, parent = os.open(part, _FOLDER_FLAGS | os.O_NOFOLLOW, dir_fd=fd), fd
            os.close(parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _ancestors(home: Path, inside: Sequence[str]) -> Iterator[Path]:
    for depth in range(1, len(inside) + 1):
        yield home.joinpath(*inside[:depth])


def _keep_name(root: Path, name: str) -> str:
    """A ``keep`` name as a model's name: ``./x``, ``sub/../x`` and ``<root>/x`` are ``x``."""
    return _relative_name(root, _absolute(root / name)) or name


def _absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` absolute, with ``.`` and ``..`` resolved as Aspose does (by name)."""
    return Path(os.path.abspath(path))


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _relative_name(root: Path, path: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
