"""``ocrpool models list | path | audit | prune``: prints what the aspose models module finds."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ocrpool.cli.conventions import add_command, positive_seconds
from ocrpool.engines.aspose import models
from ocrpool.engines.aspose.runtime import RuntimeSetupError
from ocrpool.error_codes import ExitCode, exit_code_of
from ocrpool.errors import OcrPoolError

_CODES = (ExitCode.OK, ExitCode.SOME_FAILED, ExitCode.USAGE, ExitCode.ENGINE_UNAVAILABLE)
"""Every ``models`` action's: 1 when ``prune`` could not delete a file, 2 for a model
directory that is a symlink (or below one) inside the data home."""
_EXAMPLES = (
    ("ocrpool models list", "the model files and their sizes"),
    ("ocrpool models prune", "what pruning would delete (a dry run)"),
    ("ocrpool models prune --yes --keep base.onnx", "delete OLD models but one"),
)


def register(commands: Any) -> None:
    parser = add_command(
        commands,
        "models",
        examples=_EXAMPLES,
        codes=_CODES,
        help="list, locate, audit and prune the model files Aspose keeps on disk",
        description="Aspose is asked in a throwaway process, which exits before any file "
        "is touched. Symlinks are listed, never followed, and never pruned.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model-dir",
        metavar="DIR",
        help="Aspose's model directory to use, <data home>/Aspose.AI.LLM/models: Aspose is "
        "asked with XDG_DATA_HOME=<data home> (default: $XDG_DATA_HOME, else "
        "~/.local/share, else the working directory)",
    )
    common.add_argument(
        "--timeout",
        type=positive_seconds,
        default=models.DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="give up on the Aspose process after this long "
        f"(default {models.DEFAULT_TIMEOUT_S:g})",
    )
    prefix = argparse.ArgumentParser(add_help=False)
    prefix.add_argument(
        "--prefix",
        default=models.DEFAULT_OLD_PREFIX,
        help=f"file-name prefix of OLD models (default {models.DEFAULT_OLD_PREFIX!r})",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")

    def action(name: str, parents: list[argparse.ArgumentParser], text: str) -> Any:
        return add_command(
            actions, name, examples=_EXAMPLES, codes=_CODES, parents=parents, help=text
        )

    listing = action("list", [common, as_json], "model files and Aspose.OCR resources, with sizes")
    listing.set_defaults(handler=_guarded(_list))
    path = action("path", [common], "print the absolute model directory")
    path.set_defaults(handler=_guarded(_path))
    audit = action("audit", [common, prefix, as_json], "OLD or CURRENT, size and path per model")
    audit.set_defaults(handler=_guarded(_audit))
    pruning = action(
        "prune", [common, prefix, as_json], "delete OLD models (a dry run unless --yes)"
    )
    pruning.add_argument("--yes", action="store_true", help="really delete")
    pruning.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="NAME",
        help="never delete this model: its name in the model directory, its file name or "
        "its path (repeatable; a NAME that matches no model is warned about)",
    )
    pruning.set_defaults(handler=_guarded(_prune))


def _guarded(action: Any) -> Any:
    """The action, with a failure to ask Aspose reported as one line: exit code 4 (the
    engine cannot run here), or 2 for a model directory Aspose cannot use."""

    def handler(args: argparse.Namespace) -> int:
        try:
            inventory = models.inventory(args.model_dir, timeout=args.timeout)
        except ValueError as exc:
            print(f"ocrpool models: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        except models.ModelDirUnusable as exc:
            print(f"ocrpool models: {exc.message}", file=sys.stderr)
            return exit_code_of(exc)
        except OcrPoolError as exc:
            remedy = exc.remedy if isinstance(exc, RuntimeSetupError) else ""
            remedy = remedy or "run `ocrpool doctor`"
            print(f"ocrpool models: cannot ask Aspose: {exc.message} -> {remedy}", file=sys.stderr)
            return ExitCode.ENGINE_UNAVAILABLE
        if inventory.aspose_model_dir != inventory.model_dir:
            print(
                f"ocrpool models: note: {inventory.model_dir.parents[1]} does not exist, so "
                f"Aspose would use {inventory.aspose_model_dir} instead",
                file=sys.stderr,
            )
        for entry in inventory.unreadable:
            print(
                f"ocrpool models: note: cannot read {entry.name}: {entry.reason}", file=sys.stderr
            )
        code: int = action(inventory, args)
        return code

    return handler


def _list(inventory: models.Inventory, args: argparse.Namespace) -> int:
    if args.json:
        _print_json(inventory)
        return ExitCode.OK
    print(f"models in {_shown(inventory.model_dir)}{_missing(inventory.model_dir)}")
    for model in inventory.models:
        note = "" if model.kind is models.EntryKind.FILE else f"  ({model.kind.value})"
        print(f"  {_size(model.size_bytes):>9}  {_shown(model.name)}{note}")
    if not inventory.models:
        print("  (none)")
    resource_dir = inventory.resource_dir
    print(f"Aspose.OCR resources in {_shown(resource_dir)}{_missing(resource_dir)}")
    for resource in inventory.resources:
        print(f"  {_size(resource.size_bytes):>9}  {_shown(resource.name)}")
    if not inventory.resources:
        print("  (none)")
    return ExitCode.OK


def _path(inventory: models.Inventory, args: argparse.Namespace) -> int:
    print(_shown(inventory.model_dir))
    return ExitCode.OK


def _audit(inventory: models.Inventory, args: argparse.Namespace) -> int:
    rows = [(model.status(args.prefix), model) for model in inventory.models]
    if args.json:
        _print_json(
            [
                {"status": status, "name": m.name, "size_bytes": m.size_bytes, "path": m.path}
                for status, m in rows
            ]
        )
        return ExitCode.OK
    for status, model in rows:
        print(f"{status.value:<7}  {_size(model.size_bytes):>9}  {_shown(model.path)}")
    return ExitCode.OK


def _prune(inventory: models.Inventory, args: argparse.Namespace) -> int:
    try:
        report = models.prune(inventory, prefix=args.prefix, keep=args.keep, dry_run=not args.yes)
    except ValueError as exc:
        print(f"ocrpool models prune: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except models.ModelDirUnusable as exc:
        print(f"ocrpool models prune: {exc.message}", file=sys.stderr)
        return exit_code_of(exc)
    for name in report.unknown_keep:
        print(f"ocrpool models prune: warning: --keep {name} matches no model", file=sys.stderr)
    if args.json:
        _print_json(report)
    else:
        _print_prune(report)
    return ExitCode.SOME_FAILED if report.failed else ExitCode.OK


def _print_prune(report: models.PruneReport) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    done = report.to_delete if report.dry_run else report.deleted
    total = sum(model.size_bytes or 0 for model in done)
    print(
        f"{verb} {len(done)} file(s), {_size(total)}, from {_shown(report.model_dir)} "
        f"(prefix {report.prefix!r})"
    )
    for model in done:
        print(f"  {verb:<12}  {_size(model.size_bytes):>9}  {_shown(model.name)}")
    for model in report.kept:
        print(f"  {'kept':<12}  {_size(model.size_bytes):>9}  {_shown(model.name)}  (--keep)")
    for refusal in report.refused:
        print(f"  {'refused':<12}  {'':>9}  {_shown(refusal.model.name)}  ({refusal.reason})")
    for failure in report.failed:
        print(f"  {'FAILED':<12}  {'':>9}  {_shown(failure.model.name)}  ({failure.reason})")
    if report.dry_run and done:
        print("dry run: nothing deleted; run again with --yes to delete")


def _shown(name: str | Path) -> str:
    """A file name as text output shows it: quoted with escapes (Python's) when it holds a
    character that is not printable, so a newline in a name cannot pass for another line,
    and a byte that is not UTF-8 cannot stop the listing."""
    text = str(name)
    return text if text.isprintable() else ascii(text)


def _print_json(value: Any) -> None:
    is_instance = dataclasses.is_dataclass(value) and not isinstance(value, type)
    data = dataclasses.asdict(value) if is_instance else value
    print(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _missing(directory: Path) -> str:
    return "" if directory.is_dir() else " (does not exist)"


def _size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "-"
    if size_bytes < 1024:
        return f"{size_bytes} B"
    size = size_bytes / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
