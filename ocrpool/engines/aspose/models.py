"""Model maintenance: list, locate, audit and prune the files Aspose keeps on disk.

Aspose's view (its AI model directory, what ``AsposeAI.list_local`` recognises, and
the OCR resources of ``Resources.list_local``) is taken in a throwaway child that
frees the engine and exits before ``inventory`` returns. So the calling process never
holds a model open, and ``prune``, which needs an ``Inventory``, can only run after
that child is gone.

``AsposeAI`` cannot be pointed at another directory (its constructor takes only a
logger; ``AsposeAIModelConfig.directory_model_path`` applies per post-processor), so
a ``model_dir`` override applies to the file-system side: listing, audit and pruning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ocrpool.engines.aspose.child import run_in_child
from ocrpool.engines.aspose.runtime import prepare_process

DEFAULT_OLD_PREFIX = "old_"
DEFAULT_TIMEOUT_S = 60.0
RESOURCE_SUFFIX = ".ocr"
DEFAULT_RESOURCE_DIR = "aspose_data"
"""Where Aspose.OCR keeps downloaded resources, relative to the working directory."""


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


@dataclasses.dataclass(frozen=True)
class Refusal:
    model: ModelFile
    reason: str


@dataclasses.dataclass(frozen=True)
class PruneReport:
    """``to_delete`` is the plan; ``deleted`` what was done (nothing on a dry run);
    ``refused`` what was not safe to delete; ``failed`` what the system would not delete."""

    model_dir: Path
    prefix: str
    dry_run: bool
    to_delete: tuple[ModelFile, ...]
    deleted: tuple[ModelFile, ...]
    kept: tuple[ModelFile, ...]
    refused: tuple[Refusal, ...]
    failed: tuple[Refusal, ...]


def aspose_view() -> AsposeView:
    """Runs in the child: ask Aspose where its files are, then free it."""
    prepare_process()
    import aspose.ocr as ocr
    from aspose.ocr.ai import AsposeAI

    ocr.Logging.set_file_system(False)
    ai = AsposeAI()
    try:
        model_dir = os.path.abspath(ai.get_local_path())
        # list_local raises DirectoryNotFoundException when there is no directory yet.
        listed = tuple(str(name) for name in ai.list_local()) if os.path.isdir(model_dir) else ()
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

    ``model_dir`` overrides Aspose's model directory for the file-system side. A
    directory that does not exist yet has no models (an empty inventory, no error).
    """
    view: AsposeView = run_in_child(aspose_view, timeout=timeout)
    return merge(view, model_dir)


def merge(view: AsposeView, model_dir: str | os.PathLike[str] | None = None) -> Inventory:
    """The inventory of ``model_dir`` (default: Aspose's), given what Aspose reported."""
    root = Path(model_dir if model_dir is not None else view.model_dir).absolute()
    listed = view.listed_models if root == Path(view.model_dir) else ()
    resource_dir = Path(view.resource_dir)
    resources = tuple(
        Resource(name, path, _size(path))
        for name in view.resources
        for path in [resource_dir / f"{name}{RESOURCE_SUFFIX}"]
    )
    return Inventory(root, scan(root, listed), resource_dir, resources)


def scan(root: Path, listed: Iterable[str] = ()) -> tuple[ModelFile, ...]:
    """Every file and symlink under ``root`` (not following links), plus what Aspose
    listed that is not among them, sorted by name."""
    entries: dict[str, ModelFile] = {}
    for directory, _, files in os.walk(root):
        for filename in files:
            path = Path(directory) / filename
            name = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                entries[name] = ModelFile(name, path, EntryKind.SYMLINK, None)
            elif stat.S_ISREG(info.st_mode):
                entries[name] = ModelFile(name, path, EntryKind.FILE, info.st_size)
    for item in listed:
        path = Path(item) if os.path.isabs(item) else root / item
        name = _relative_name(root, path) or item
        known = entries.get(name)
        entries[name] = (
            dataclasses.replace(known, listed_by_aspose=True)
            if known is not None
            else ModelFile(name, path, EntryKind.NOT_ON_DISK, None, listed_by_aspose=True)
        )
    return tuple(entries[name] for name in sorted(entries))


def prune(
    inventory: Inventory,
    *,
    prefix: str = DEFAULT_OLD_PREFIX,
    keep: Iterable[str] = (),
    dry_run: bool = True,
) -> PruneReport:
    """Delete the OLD models (name starts with ``prefix``) of an inventory.

    Only regular files inside the model directory are deleted, each re-checked right
    before its deletion; symlinks, anything reached through a symlinked directory and
    names with ``..`` are refused. ``keep`` names (relative names or file names) are
    never deleted. A dry run (the default) deletes nothing.
    """
    if not prefix or "/" in prefix:
        raise ValueError(f"prefix must be a non-empty file-name prefix, not {prefix!r}")
    whitelist = set(keep)
    to_delete, deleted, kept, refused, failed = [], [], [], [], []
    for model in inventory.models:
        if model.status(prefix) is not ModelStatus.OLD:
            continue
        if model.name in whitelist or Path(model.name).name in whitelist:
            kept.append(model)
            continue
        reason = refusal_reason(inventory.model_dir, model)
        if reason is not None:
            refused.append(Refusal(model, reason))
            continue
        to_delete.append(model)
        if not dry_run:
            try:
                (inventory.model_dir / model.name).unlink()
            except OSError as exc:
                failed.append(Refusal(model, exc.strerror or str(exc)))
            else:
                deleted.append(model)
    return PruneReport(
        inventory.model_dir,
        prefix,
        dry_run,
        tuple(to_delete),
        tuple(deleted),
        tuple(kept),
        tuple(refused),
        tuple(failed),
    )


def refusal_reason(root: Path, model: ModelFile) -> str | None:
    """Why ``model`` must not be deleted, or ``None`` when it is a plain file inside."""
    relative = Path(model.name)
    if relative.is_absolute() or ".." in relative.parts:
        return "outside the model directory"
    path = root / relative
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "no such file"
    if stat.S_ISLNK(info.st_mode):
        return "a symlink"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if _relative_name(root.resolve(), path.parent.resolve() / path.name) != model.name:
        return "outside the model directory (through a symlinked directory)"
    return None


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
